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
    for value in [parsed.eio, parsed.transport, parsed.sid].into_iter().flatten() {
        let start = value.as_ptr() as usize - query.as_ptr() as usize;
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
