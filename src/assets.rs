//! Files embedded at build time (see `build.rs`): the chat page and the Socket.IO client.

/// One embedded file, with its gzipped form when that is smaller.
#[derive(Debug)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub cache_control: &'static str,
    pub etag: &'static str,
    pub content_security_policy: Option<&'static str>,
    pub body: &'static [u8],
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Where the page loads the official client from.
pub const CLIENT_BUNDLE_PATH: &str = "/socket.io/socket.io.js";

/// The embedded file served at `path`, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|asset| asset.path == path)
}

/// The version of the official client bundle embedded in this build, if it has one.
pub fn client_bundle_version() -> Option<&'static str> {
    find(CLIENT_BUNDLE_PATH).map(|_| CLIENT_BUNDLE_VERSION)
}
