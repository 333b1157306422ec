//! Engine.IO's HTTP errors, with socket.io's codes and bodies.

use hyper::{Response, StatusCode};

use super::body::{Body, response};

/// Engine.IO's HTTP error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineError {
    TransportUnknown = 0,
    UnknownSid = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    Forbidden = 4,
    UnsupportedProtocolVersion = 5,
}

impl EngineError {
    pub fn message(self) -> &'static str {
        match self {
            EngineError::TransportUnknown => "Transport unknown",
            EngineError::UnknownSid => "Session ID unknown",
            EngineError::BadHandshakeMethod => "Bad handshake method",
            EngineError::BadRequest => "Bad request",
            EngineError::Forbidden => "Forbidden",
            EngineError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP answer: 403 for Forbidden, 400 otherwise, with socket.io's JSON body.
    pub fn response(self) -> Response<Body> {
        let status = if self == EngineError::Forbidden {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        let body = format!(
            "{{\"code\":{},\"message\":\"{}\"}}",
            self as u8,
            self.message()
        );
        response(status, "application/json", body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_match_socket_io() {
        assert_eq!(EngineError::UnknownSid as u8, 1);
        assert_eq!(
            EngineError::UnsupportedProtocolVersion.message(),
            "Unsupported protocol version"
        );
    }
}
