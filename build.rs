//! Embeds the chat page and the official Socket.IO client bundle into the binary.
//!
//! The page comes from `static/`. The client bundle is fetched (pinned, integrity-checked) by
//! `make bundle` into `target/client-bundle/`, or wherever `EMBERCHAT_CLIENT_DIR` points; when
//! it is absent (a plain `cargo build` on a fresh clone) the binary is built without it and
//! answers `/socket.io/socket.io.js` with a 404 that says how to build it in. Each file is
//! also gzipped here, once, so the server never compresses at run time.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

struct Source {
    route: &'static str,
    file: PathBuf,
    content_type: &'static str,
    cache_control: &'static str,
    csp: Option<&'static str>,
}

const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; manifest-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let static_dir = manifest.join("static");
    let bundle_dir = env::var_os("EMBERCHAT_CLIENT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target/client-bundle"));
    println!("cargo:rerun-if-env-changed=EMBERCHAT_CLIENT_DIR");
    println!("cargo:rerun-if-changed={}", static_dir.display());
    println!("cargo:rerun-if-changed={}", bundle_dir.display());

    let page = |route, name: &str, content_type, csp| Source {
        route,
        file: static_dir.join(name),
        content_type,
        cache_control: "no-cache",
        csp,
    };
    let mut sources = vec![
        page(
            "/",
            "index.html",
            "text/html; charset=utf-8",
            Some(PAGE_CSP),
        ),
        page("/app.js", "app.js", "text/javascript; charset=utf-8", None),
        page("/style.css", "style.css", "text/css; charset=utf-8", None),
        page("/favicon.svg", "favicon.svg", "image/svg+xml", None),
        page("/icon.svg", "icon.svg", "image/svg+xml", None),
        page(
            "/manifest.webmanifest",
            "manifest.webmanifest",
            "application/manifest+json",
            None,
        ),
        // The service worker must be served from the root to control the whole page.
        page("/sw.js", "sw.js", "text/javascript; charset=utf-8", None),
    ];
    let mut bundle_version = String::new();
    for name in ["socket.io.js", "socket.io.min.js"] {
        let file = bundle_dir.join(name);
        println!("cargo:rerun-if-changed={}", file.display());
        if file.exists() {
            let route = if name == "socket.io.js" {
                "/socket.io/socket.io.js"
            } else {
                "/socket.io/socket.io.min.js"
            };
            sources.push(Source {
                route,
                file,
                content_type: "text/javascript; charset=utf-8",
                cache_control: "public, max-age=86400",
                csp: None,
            });
        }
    }
    if let Ok(version) = fs::read_to_string(bundle_dir.join("VERSION")) {
        bundle_version = version.trim().to_owned();
    }
    if !sources.iter().any(|s| s.route == "/socket.io/socket.io.js") {
        println!(
            "cargo:warning=Socket.IO client bundle not found in {}; building without it (run `make bundle`)",
            bundle_dir.display()
        );
    }

    let mut code = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (i, source) in sources.iter().enumerate() {
        // The bundle entries exist (checked above); a page file missing from static/ is a
        // broken checkout, not something to build a page without.
        let body = fs::read(&source.file)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", source.file.display()));
        println!("cargo:rerun-if-changed={}", source.file.display());
        // The page's own files are served compacted, from a copy here; others as they are.
        let body_path = if source.cache_control == "no-cache" {
            let path = out.join(format!("asset{i}"));
            fs::write(&path, compact(&source.file, body.clone())).unwrap();
            path
        } else {
            absolute(&source.file)
        };
        let body = fs::read(&body_path).unwrap();
        let gz_path = out.join(format!("asset{i}.gz"));
        let gz = gzip(&body);
        fs::write(&gz_path, &gz).unwrap();
        let gzip_field = if gz.len() + 64 < body.len() {
            format!("Some(include_bytes!({:?}))", gz_path.display().to_string())
        } else {
            "None".to_owned()
        };
        let csp = match source.csp {
            Some(csp) => format!("Some({csp:?})"),
            None => "None".to_owned(),
        };
        writeln!(
            code,
            "    Asset {{ path: {:?}, content_type: {:?}, cache_control: {:?}, etag: {:?}, \
             content_security_policy: {csp}, body: include_bytes!({:?}), gzip: {gzip_field} }},",
            source.route,
            source.content_type,
            source.cache_control,
            format!("\"{:016x}\"", fnv1a(&body)),
            body_path.display().to_string(),
        )
        .unwrap();
    }
    code.push_str("];\n");
    writeln!(
        code,
        "pub const CLIENT_BUNDLE_VERSION: &str = {bundle_version:?};"
    )
    .unwrap();
    fs::write(out.join("assets.rs"), code).unwrap();
}

/// The page's own scripts and stylesheet without their comments and indentation (the
/// sources keep them; the binary and the network need not carry them). Line breaks stay, so
/// JavaScript's automatic semicolons are unaffected. Conservative by design, and safe for
/// these files only: no template literal or string spans lines, and no CSS string holds
/// `/*`. Other files are left alone.
fn compact(file: &Path, body: Vec<u8>) -> Vec<u8> {
    let kind = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    if kind != "js" && kind != "css" {
        return body;
    }
    let text = String::from_utf8(body).expect("page files are UTF-8");
    let text = if kind == "css" {
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(start) = rest.find("/*") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("*/").expect("unterminated CSS comment") + start + 2;
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    } else {
        text
    };
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || (kind == "js" && line.starts_with("//")) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.into_bytes()
}

fn absolute(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A content hash for ETags; collisions only cost a cache miss.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
