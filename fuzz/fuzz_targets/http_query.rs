//! HTTP request parts a client controls: the query string, the Origin and Host headers and
//! the session id. None may panic; parsed values are always slices of the input.
#![no_main]

use emberchat::engineio::Sid;
use emberchat::transport::{origin, parse_query};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let mut parts = input.splitn(3, '\n');
    let query = parts.next().unwrap_or("");
    let origin_header = parts.next();
    let host = parts.next();

    let parsed = parse_query(query);
    // An empty value (`EIO` without `=`) need not point into the query; any other must.
    let values = [parsed.eio, parsed.transport, parsed.sid];
    for value in values.into_iter().flatten().filter(|v| !v.is_empty()) {
        let start = (value.as_ptr() as usize).wrapping_sub(query.as_ptr() as usize);
        assert!(start + value.len() <= query.len());
        assert!(!value.contains('&'));
    }
    if let Some(sid) = parsed.sid {
        let _ = Sid::parse(sid);
    }
    let allowed = ["http://laptop.local:8080".to_owned()];
    let _ = origin::check(origin_header, host, &allowed);
    let _ = origin::check(origin_header, host, &[]);
});
