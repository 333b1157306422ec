//! The page's additions to the protocol (README, "Protocol"), as raw bytes: opted into with
//! `auth.emberchat: 1`, and invisible to the tutorial's clients beside them.

use std::time::{Duration, Instant};

use tungstenite::Message;

use crate::common::{Gateway, Ws, read_text, socketio_ws};

/// Every text message that arrives within `window`, pings answered.
fn collect_for(ws: &mut Ws, window: Duration) -> Vec<String> {
    let deadline = Instant::now() + window;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        ws.get_mut().set_read_timeout(Some(left)).unwrap();
        match ws.read() {
            Ok(Message::Text(text)) if text.as_str() == "2" => ws.send(Message::text("3")).unwrap(),
            Ok(Message::Text(text)) => got.push(text.as_str().to_owned()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    got
}

/// `packets` without presence updates (which come when they come).
fn without_presence(packets: Vec<String>) -> Vec<String> {
    packets
        .into_iter()
        .filter(|p| !p.starts_with("42[\"presence\""))
        .collect()
}

/// The next packet that is not a presence update.
fn next_not_presence(ws: &mut Ws) -> String {
    loop {
        let text = read_text(ws);
        if !text.starts_with("42[\"presence\"") {
            return text;
        }
    }
}

fn send(ws: &mut Ws, packet: &str) {
    ws.send(Message::text(packet.to_owned())).unwrap();
}

const PAGE: &str = r#"{"emberchat":1,"name":"Ana"}"#;

#[test]
fn tutorial_clients_get_the_tutorial_protocol_beside_the_page() {
    let gateway = Gateway::start("extended-forms", &[]);
    let (mut tutorial, _) = socketio_ws(&gateway, r#"{"serverOffset":0}"#);
    let (mut page, _) = socketio_ws(&gateway, PAGE);
    let snapshot = read_text(&mut page);
    assert!(
        snapshot.starts_with(r#"42["presence",{"count":2,"anonymous":1,"names":["Ana"]"#),
        "{snapshot}"
    );
    let (mut other, _) = socketio_ws(&gateway, r#"{"emberchat":1,"name":"Bo"}"#);

    send(&mut page, r#"421["chat message","hi","c-1"]"#);
    let extended = next_not_presence(&mut page);
    let prefix = r#"42["chat message","hi",1,{"name":"Ana","time":"#;
    assert!(extended.starts_with(prefix), "{extended}");
    assert!(extended.ends_with(r#","offset":"c-1"},"1"]"#), "{extended}");
    let time: i64 = extended[prefix.len()..]
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((now - 60_000..=now).contains(&time), "{time}");
    assert_eq!(next_not_presence(&mut page), r#"431[{"id":1}]"#);
    // Another page gets the name and time, never the sender's client offset.
    let seen = next_not_presence(&mut other);
    assert!(seen.starts_with(prefix), "{seen}");
    assert!(
        seen.ends_with(r#"},"1"]"#) && !seen.contains("offset"),
        "{seen}"
    );
    // A retry of the same client offset: acked with the id it was stored under.
    send(&mut page, r#"422["chat message","hi","c-1"]"#);
    assert_eq!(next_not_presence(&mut page), r#"432[{"id":1}]"#);

    // The tutorial's client: the tutorial's bytes, its acks empty, nothing else.
    assert_eq!(read_text(&mut tutorial), r#"42["chat message","hi",1,"1"]"#);
    send(&mut tutorial, r#"423["chat message","yo","t-1"]"#);
    assert_eq!(read_text(&mut tutorial), r#"42["chat message","yo",2,"2"]"#);
    assert_eq!(read_text(&mut tutorial), "433[]");
    send(&mut page, r#"42["typing"]"#);
    send(&mut tutorial, r#"424["history",{}]"#);
    assert_eq!(
        read_text(&mut tutorial),
        r#"434[{"error":"unknown event"}]"#
    );
    assert!(collect_for(&mut tutorial, Duration::from_millis(600)).is_empty());
}

#[test]
fn history_pages_are_keyed_on_ids_capped_and_checked() {
    let gateway = Gateway::start("extended-history", &["--max-message-rate", "0"]);
    let (mut writer, _) = socketio_ws(&gateway, "{}");
    for i in 1..=150 {
        send(&mut writer, &format!(r#"42{i}["chat message","m{i}"]"#));
        assert_eq!(
            read_text(&mut writer),
            format!(r#"42["chat message","m{i}",{i},"{i}"]"#)
        );
        assert_eq!(read_text(&mut writer), format!("43{i}[]"));
    }
    let (mut page, _) = socketio_ws(&gateway, r#"{"emberchat":1,"serverOffset":150}"#);

    // Asked for 1000: capped at 100, the newest, oldest first, and more to come.
    send(&mut page, r#"421["history",{"limit":1000}]"#);
    let reply = next_not_presence(&mut page);
    assert!(
        reply.starts_with(r#"431[{"messages":[{"id":51,"text":"m51","time":"#),
        "{reply}"
    );
    assert!(reply.ends_with(r#"],"more":true}]"#), "{reply}");
    assert_eq!(reply.matches("{\"id\":").count(), 100);
    send(&mut page, r#"422["history",{"before":51}]"#);
    let reply = next_not_presence(&mut page);
    assert!(
        reply.starts_with(r#"432[{"messages":[{"id":1,"text":"m1","#),
        "{reply}"
    );
    assert!(reply.contains(r#"{"id":50,"text":"m50","#), "{reply}");
    assert!(reply.ends_with(r#"],"more":false}]"#), "{reply}");
    assert_eq!(reply.matches("{\"id\":").count(), 50);
    send(
        &mut page,
        r#"423["history",{"after":140,"before":145,"limit":10}]"#,
    );
    let reply = next_not_presence(&mut page);
    assert_eq!(reply.matches("{\"id\":").count(), 4, "{reply}");
    assert!(reply.contains(r#"{"id":141,"#) && reply.contains(r#"{"id":144,"#));

    for (query, error) in [
        (
            r#"{"before":"x"}"#,
            "history: before and after must be message ids",
        ),
        (
            r#"{"limit":0}"#,
            "history: limit must be a positive integer",
        ),
        ("7", "history needs {before, after, limit}"),
    ] {
        send(&mut page, &format!(r#"424["history",{query}]"#));
        assert_eq!(
            next_not_presence(&mut page),
            format!(r#"434[{{"error":"{error}"}}]"#)
        );
    }
}

#[test]
fn a_long_absence_replays_the_newest_and_says_what_it_skipped() {
    let gateway = Gateway::start("extended-missed", &["--max-message-rate", "0"]);
    let (mut writer, _) = socketio_ws(&gateway, "{}");
    for i in 1..=30 {
        send(&mut writer, &format!(r#"42{i}["chat message","m{i}"]"#));
        read_text(&mut writer);
        read_text(&mut writer);
    }
    let (mut page, _) = socketio_ws(&gateway, r#"{"emberchat":1,"serverOffset":5,"newest":10}"#);
    assert_eq!(
        next_not_presence(&mut page),
        r#"42["missed",{"count":15,"more":false,"after":5,"before":21}]"#
    );
    for i in 21..=30 {
        let message = next_not_presence(&mut page);
        assert!(
            message.starts_with(&format!(r#"42["chat message","m{i}",{i},{{"#)),
            "{message}"
        );
    }
    // Missing no more than the window: everything, no notice.
    let (mut near, _) = socketio_ws(&gateway, r#"{"emberchat":1,"serverOffset":25,"newest":10}"#);
    let first = next_not_presence(&mut near);
    assert!(
        first.starts_with(r#"42["chat message","m26",26,"#),
        "{first}"
    );
    // The tutorial's client is never windowed.
    let (mut tutorial, _) = socketio_ws(&gateway, r#"{"serverOffset":5,"newest":10}"#);
    assert_eq!(read_text(&mut tutorial), r#"42["chat message","m6",6,"6"]"#);
}

#[test]
fn names_are_checked_and_typing_is_rate_limited_and_not_echoed() {
    let gateway = Gateway::start("extended-names", &[]);
    let mut ws = crate::common::open_ws(&gateway, "");
    read_text(&mut ws);
    send(&mut ws, r#"40{"emberchat":1,"name":"admin\u202enimda"}"#);
    assert_eq!(
        read_text(&mut ws),
        r#"44{"message":"name has control or invisible characters"}"#
    );

    let (mut ana, _) = socketio_ws(&gateway, PAGE);
    let (mut bo, _) = socketio_ws(&gateway, r#"{"emberchat":1}"#);
    send(&mut bo, r#"421["name","  Bo "]"#);
    assert_eq!(next_not_presence(&mut bo), r#"431[{"name":"Bo"}]"#);
    send(&mut bo, &format!(r#"422["name","{}"]"#, "x".repeat(33)));
    assert_eq!(
        next_not_presence(&mut bo),
        r#"432[{"error":"name longer than 32 characters"}]"#
    );
    // Ana's list gets Bo's new name.
    while !read_text(&mut ana)
        .starts_with(r#"42["presence",{"count":2,"anonymous":0,"names":["Ana","Bo"]"#)
    {}

    for _ in 0..5 {
        send(&mut ana, r#"42["typing"]"#);
    }
    assert_eq!(next_not_presence(&mut bo), r#"42["typing","Ana"]"#);
    // The other four were within the second: dropped. Ana hears nothing of her own.
    assert!(without_presence(collect_for(&mut bo, Duration::from_millis(300))).is_empty());
    assert!(without_presence(collect_for(&mut ana, Duration::from_millis(100))).is_empty());
    // A second later, one more.
    std::thread::sleep(Duration::from_millis(1000));
    send(&mut ana, r#"42["typing"]"#);
    assert_eq!(next_not_presence(&mut bo), r#"42["typing","Ana"]"#);
    // Messages carry the name given after connecting.
    send(&mut bo, r#"423["chat message","hey"]"#);
    let message = next_not_presence(&mut ana);
    assert!(
        message.starts_with(r#"42["chat message","hey",1,{"name":"Bo","time":"#),
        "{message}"
    );
}
