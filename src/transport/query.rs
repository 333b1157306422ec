//! The Engine.IO parameters of a request's query string.

/// The Engine.IO query parameters of a request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query<'a> {
    pub eio: Option<&'a str>,
    pub transport: Option<&'a str>,
    pub sid: Option<&'a str>,
}

/// Reads `EIO`, `transport` and `sid` from a query string. Values of these parameters are
/// plain tokens, so no percent-decoding is needed; an encoded value simply does not match.
pub fn parse_query(query: &str) -> Query<'_> {
    let mut parsed = Query::default();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            "EIO" => &mut parsed.eio,
            "transport" => &mut parsed.transport,
            "sid" => &mut parsed.sid,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_engine_query() {
        assert_eq!(
            parse_query("EIO=4&transport=polling&t=N8hyd6w&sid=abc"),
            Query {
                eio: Some("4"),
                transport: Some("polling"),
                sid: Some("abc")
            }
        );
        assert_eq!(parse_query(""), Query::default());
        assert_eq!(parse_query("EIO&&=x&transport=a=b").transport, Some("a=b"));
        assert_eq!(parse_query("sid=1&sid=2").sid, Some("1"));
    }
}
