//! The HTTP front: accept loop, routing, and the embedded static files.

use std::cell::Cell;
use std::convert::Infallible;
use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::assets::{self, Asset};
use crate::engineio::Engine;
use crate::host::HostAllowList;
use crate::logger::{Throttle, untrusted};
use crate::transport::{self, Body, io::HyperIo, io::TokioTimer, response};

/// A health check on its way: `Ok` when the gateway can serve, else why not.
pub type HealthCheck = Pin<Box<dyn Future<Output = Result<(), Unhealthy>>>>;

/// Why `/healthz` fails: a reason anyone on the LAN may read, and the details (a path, an
/// OS error), which only go to the log.
#[derive(Debug)]
pub struct Unhealthy {
    pub reason: &'static str,
    pub detail: Box<dyn Error>,
}

/// What `/healthz` and `/metrics` report.
pub trait Status {
    /// Resolves to `Ok` when the gateway can serve (its database answers).
    fn health(&self) -> HealthCheck;
    /// Metrics in Prometheus' text format.
    fn metrics(&self) -> String;
}

/// Where requests go: Engine.IO endpoints by path, then the embedded files; none of them for
/// a `Host` the allow-list refuses.
pub struct Router {
    endpoints: Vec<(String, Rc<Engine>)>,
    serve_assets: bool,
    status: Option<Rc<dyn Status>>,
    hosts: Option<HostAllowList>,
    /// Paths answered by a handler of their own, before anything else.
    raw: Vec<(String, RawHandler)>,
}

/// A handler that takes a request whole, such as the conformance example's Autobahn echo
/// (`transport::websocket_echo`); kept out of the gateway's own routes so that its binary
/// does not carry it.
pub type RawHandler = Rc<dyn Fn(Request<Incoming>) -> Response<Body>>;

impl Router {
    /// A router that serves the embedded page and client bundle.
    pub fn new() -> Router {
        Router {
            endpoints: Vec::new(),
            serve_assets: true,
            status: None,
            hosts: None,
            raw: Vec::new(),
        }
    }

    /// A router with Engine.IO endpoints only (as the conformance server wants).
    pub fn without_assets() -> Router {
        Router {
            endpoints: Vec::new(),
            serve_assets: false,
            status: None,
            hosts: None,
            raw: Vec::new(),
        }
    }

    /// Serves Engine.IO at `path` (such as `/socket.io/`).
    pub fn endpoint(mut self, path: &str, engine: Rc<Engine>) -> Router {
        let path = path.trim_end_matches('/').to_owned();
        self.endpoints.push((path, engine));
        self
    }

    /// Serves `/healthz` and `/metrics` from `status`.
    pub fn status(mut self, status: Rc<dyn Status>) -> Router {
        self.status = Some(status);
        self
    }

    /// Answers `path` with `handler`.
    pub fn raw(mut self, path: &str, handler: RawHandler) -> Router {
        self.raw.push((path.to_owned(), handler));
        self
    }

    /// Serves only requests whose `Host` `hosts` allows, on every route.
    pub fn hosts(mut self, hosts: HostAllowList) -> Router {
        self.hosts = Some(hosts);
        self
    }

    async fn route(&self, request: Request<Incoming>) -> Response<Body> {
        if let Some(hosts) = &self.hosts {
            let host = request.headers().get(header::HOST);
            let name = host.map(|h| h.to_str().unwrap_or("\u{fffd}"));
            if !hosts.allows(name) {
                log::debug!(
                    "refused a request for the host {} (not allowed: see --allow-host)",
                    untrusted(name.unwrap_or(""))
                );
                return response(
                    StatusCode::MISDIRECTED_REQUEST,
                    "text/plain; charset=utf-8",
                    "This gateway does not answer to that host name. Use its address, its \
                     .local name or its hostname, or start it with --allow-host.\n",
                );
            }
        }
        let path = request.uri().path();
        if let Some((_, handler)) = self.raw.iter().find(|(p, _)| p == path) {
            return handler(request);
        }
        if let Some(status) = &self.status {
            match path {
                "/healthz" => {
                    return match status.health().await {
                        Ok(()) => response(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
                        // The details (a path, an OS error) are for the log, not for anyone
                        // on the LAN who asks.
                        Err(unhealthy) => {
                            log::warn!("health check failed: {}", unhealthy.detail);
                            response(
                                StatusCode::SERVICE_UNAVAILABLE,
                                "text/plain; charset=utf-8",
                                format!("unhealthy: {} (see the log)\n", unhealthy.reason),
                            )
                        }
                    };
                }
                "/metrics" => {
                    return response(
                        StatusCode::OK,
                        "text/plain; version=0.0.4; charset=utf-8",
                        status.metrics(),
                    );
                }
                _ => {}
            }
        }
        if self.serve_assets
            && let Some(asset) = assets::find(path)
        {
            return serve_asset(&request, asset);
        }
        let trimmed = path.trim_end_matches('/');
        if let Some((_, engine)) = self.endpoints.iter().find(|(p, _)| p == trimmed) {
            let engine = engine.clone();
            return transport::handle(&engine, request).await;
        }
        if self.serve_assets && path == assets::CLIENT_BUNDLE_PATH {
            return response(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "The Socket.IO client bundle was not embedded in this build: build with `make build`.\n",
            );
        }
        response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "Not found\n",
        )
    }
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

fn serve_asset(request: &Request<Incoming>, asset: &'static Asset) -> Response<Body> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "Method not allowed\n",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let headers = request.headers();
    let etag_matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == asset.etag || tag.trim() == "*")
        });
    let accepts_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let gzip = asset.gzip.filter(|_| accepts_gzip);
    let (status, body) = if etag_matches {
        (StatusCode::NOT_MODIFIED, Bytes::new())
    } else if request.method() == Method::HEAD {
        (StatusCode::OK, Bytes::new())
    } else {
        (
            StatusCode::OK,
            Bytes::from_static(gzip.unwrap_or(asset.body)),
        )
    };
    let mut response = response(status, asset.content_type, body);
    let headers = response.headers_mut();
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(asset.cache_control),
    );
    if asset.gzip.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if gzip.is_some() && status == StatusCode::OK {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if let Some(csp) = asset.content_security_policy {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// True if an Accept-Encoding value allows gzip (and does not refuse it with `q=0`).
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let refused = parts.any(|p| p.replace(' ', "") == "q=0" || p.starts_with("q=0.0"));
        (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
    })
}

/// Bounds on what one HTTP request may cost before it reaches a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest request head (request line and headers) buffered; longer gets HTTP 431.
    /// hyper's floor is 8192. Default 16 KiB.
    pub max_header_bytes: usize,
    /// Time allowed for a request head to arrive (slowloris). Default 30 s.
    pub header_timeout: std::time::Duration,
    /// HTTP connections served at once (a WebSocket stops counting once upgraded); further
    /// ones wait in the kernel's accept queue. Each holds hyper's buffers, about 15 KB, so
    /// this is what bounds them. Default 1024.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_header_bytes: 16 * 1024,
            header_timeout: std::time::Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// hyper refuses a read buffer smaller than this.
pub const MIN_HEADER_BYTES: usize = 8192;

/// Accepts connections until `shutdown` completes. Must run inside a `LocalSet`.
pub async fn serve(
    listener: TcpListener,
    router: Rc<Router>,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let slots = Rc::new(ConnectionSlots::default());
    loop {
        tokio::select! {
            () = slots.wait_below(limits.max_connections) => {}
            _ = &mut shutdown => return,
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    log::warn!("accept failed: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let slot = slots.take();
        tokio::task::spawn_local(async move {
            let _slot = slot;
            let service = service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(transport::Peer(peer.ip()));
                let router = router.clone();
                async move { Ok::<_, Infallible>(router.route(request).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer)
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
                .serve_connection(HyperIo(stream), service)
                .with_upgrades();
            if let Err(error) = connection.await {
                log::debug!("connection from {peer}: {error}");
            }
        });
    }
}

/// HTTP connections being served, and a wake-up when one ends.
#[derive(Default)]
struct ConnectionSlots {
    open: Cell<usize>,
    freed: Notify,
}

impl ConnectionSlots {
    /// Waits until fewer than `max` connections are open.
    async fn wait_below(&self, max: usize) {
        if self.open.get() >= max {
            FULL.log(
                log::Level::Warn,
                format_args!("{max} HTTP connections open (--max-http-connections): new ones wait"),
            );
        }
        while self.open.get() >= max {
            self.freed.notified().await;
        }
    }

    fn take(self: &Rc<Self>) -> Slot {
        self.open.set(self.open.get() + 1);
        Slot(self.clone())
    }
}

/// One open connection's place; freed when dropped.
struct Slot(Rc<ConnectionSlots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
        self.0.freed.notify_one();
    }
}

/// A full server is reported once in a while, not once per connection.
static FULL: Throttle = Throttle::new(1, std::time::Duration::from_secs(60));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_accept_encoding() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, gzip;q=0.8"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("deflate, br"));
        assert!(!accepts_gzip("identity"));
    }
}
