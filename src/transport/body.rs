//! HTTP response bodies, as every handler answers with them.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::Response;
use hyper::StatusCode;
use hyper::body::SizeHint;
use hyper::header::{self, HeaderValue};

use crate::budget::Lease;

/// A response body that is sent in one piece, perhaps with a share of a memory budget that
/// it gives back once hyper is done with it.
#[derive(Debug, Default)]
pub struct Body {
    data: Option<Bytes>,
    held: Option<Lease>,
}

impl Body {
    pub fn empty() -> Body {
        Body::default()
    }

    /// Keeps `lease` until the body is dropped.
    pub fn hold(&mut self, lease: Lease) {
        self.held = Some(lease);
    }
}

impl From<Bytes> for Body {
    fn from(data: Bytes) -> Body {
        Body {
            data: Some(data),
            held: None,
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(
            self.data
                .take()
                .map(|data| Ok(hyper::body::Frame::data(data))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// A response with a body and its content type.
pub fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(Body::from(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
