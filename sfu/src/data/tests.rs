//! The data relay's rules, as specifications: what passes the gate, what a recipient reads, and
//! who gets a copy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::gate::{DataGate, Refusal, Relay};
use super::{DataCounters, DataRejection, MAX_DATA_MESSAGE_BYTES};
use crate::ids::DisplayName;
use crate::presence::Presence;
use crate::room::{Admission, Room};
use crate::{ParticipantId, ParticipantInfo, RoomId};

fn id(s: &str) -> ParticipantId {
    ParticipantId::from_trusted(s)
}

fn gate(now: Instant) -> DataGate {
    DataGate::new(id("ada"), true, 10.0, now)
}

fn text(g: &mut DataGate, now: Instant, s: &str) -> Result<Relay, Refusal> {
    g.admit(now, s.as_bytes(), true)
}

fn rejection(result: Result<Relay, Refusal>) -> DataRejection {
    result.expect_err("refused").rejection
}

#[test]
fn a_recipient_reads_the_senders_id_and_the_payload_exactly_as_written() {
    let now = Instant::now();
    let relay = text(
        &mut gate(now),
        now,
        r#"{"payload": {"kind":"chat", "text":"hi <b>"} }"#,
    )
    .unwrap();
    assert_eq!(
        &*relay.message,
        r#"{"from":"ada","payload":{"kind":"chat", "text":"hi <b>"}}"#
    );
    assert_eq!(relay.to, None, "no `to`: everyone else");
}

#[test]
fn any_json_value_is_a_payload() {
    let now = Instant::now();
    let mut g = gate(now);
    for payload in ["1", "\"x\"", "null", "[1,2]", "true"] {
        let relay = text(&mut g, now, &format!(r#"{{"payload":{payload}}}"#)).unwrap();
        assert!(relay.message.ends_with(&format!(":{payload}}}")));
    }
}

#[test]
fn to_names_the_recipients() {
    let now = Instant::now();
    let relay = text(&mut gate(now), now, r#"{"payload":1,"to":["bob","cy"]}"#).unwrap();
    assert_eq!(relay.to, Some(vec!["bob".to_owned(), "cy".to_owned()]));
}

#[test]
fn malformed_messages_are_refused_with_a_reason_and_the_sender_is_told() {
    let now = Instant::now();
    let mut g = DataGate::new(id("ada"), true, 1000.0, now);
    type Expected = fn(&DataRejection) -> bool;
    let cases: [(&str, Expected); 5] = [
        ("{not json", |r| matches!(r, DataRejection::BadJson(_))),
        ("", |r| matches!(r, DataRejection::BadJson(_))),
        (r#"{"to":["bob"]}"#, |r| {
            matches!(r, DataRejection::Invalid(_))
        }),
        (r#"{"payload":1,"to":"bob"}"#, |r| {
            matches!(r, DataRejection::Invalid(_))
        }),
        (r#"[1,2]"#, |r| matches!(r, DataRejection::Invalid(_))),
    ];
    for (message, expected) in cases {
        let refusal = text(&mut g, now, message).expect_err(message);
        assert!(expected(&refusal.rejection), "{message:?}: {refusal:?}");
        assert!(refusal.tell, "{message:?}");
    }
    let binary = g.admit(now, br#"{"payload":1}"#, false);
    assert!(matches!(rejection(binary), DataRejection::Invalid(_)));
    let not_utf8 = g.admit(now, &[0xff, 0xfe], true);
    assert!(matches!(rejection(not_utf8), DataRejection::BadJson(_)));
}

#[test]
fn a_message_over_16_kib_is_refused_and_one_of_16_kib_passes() {
    let now = Instant::now();
    let mut g = gate(now);
    let envelope = |len: usize| {
        let padding = "x".repeat(len - r#"{"payload":""}"#.len());
        format!(r#"{{"payload":"{padding}"}}"#)
    };
    assert!(text(&mut g, now, &envelope(MAX_DATA_MESSAGE_BYTES)).is_ok());
    let too_large = text(&mut g, now, &envelope(MAX_DATA_MESSAGE_BYTES + 1));
    assert_eq!(
        rejection(too_large),
        DataRejection::TooLarge {
            size: MAX_DATA_MESSAGE_BYTES + 1,
            max: MAX_DATA_MESSAGE_BYTES
        }
    );
}

#[test]
fn someone_without_the_right_to_publish_cannot_send() {
    let now = Instant::now();
    let mut viewer = DataGate::new(id("vic"), false, 10.0, now);
    let refused = text(&mut viewer, now, r#"{"payload":"hello"}"#);
    assert_eq!(rejection(refused), DataRejection::NotAllowed);
}

#[test]
fn past_the_rate_messages_are_dropped_and_the_sender_is_told_once_a_second() {
    let t0 = Instant::now();
    let mut g = gate(t0);
    let ok = r#"{"payload":1}"#;
    for _ in 0..10 {
        assert!(text(&mut g, t0, ok).is_ok(), "a second's worth at once");
    }
    let first = text(&mut g, t0, ok).expect_err("over the rate");
    assert_eq!(first.rejection, DataRejection::RateLimited);
    assert!(first.tell);
    let t = t0 + Duration::from_millis(50);
    assert!(!text(&mut g, t, ok).expect_err("still over").tell);
    let t = t0 + Duration::from_millis(1000);
    for _ in 0..10 {
        assert!(text(&mut g, t, ok).is_ok(), "tokens come back at the rate");
    }
    let again = text(&mut g, t, ok).expect_err("over again");
    assert!(again.tell, "a second after the last error");
}

#[test]
fn refused_messages_count_against_the_rate() {
    let t0 = Instant::now();
    let mut g = gate(t0);
    for _ in 0..10 {
        let _ = text(&mut g, t0, "rubbish");
    }
    let refused = text(&mut g, t0, r#"{"payload":1}"#);
    assert_eq!(rejection(refused), DataRejection::RateLimited);
}

struct Member {
    info: ParticipantInfo,
    inbox: mpsc::Receiver<Arc<str>>,
}

fn member(room: &Room, name: &str, outbox: usize) -> Member {
    let info = ParticipantInfo::new(id(name), DisplayName::parse(Some(name)).unwrap());
    let (commands, _) = mpsc::unbounded_channel();
    let Admission::Admitted(_) = room.admit(info.clone(), commands, Arc::new(Presence::new()))
    else {
        panic!("not admitted");
    };
    let (tx, inbox) = mpsc::channel(outbox);
    room.open_data(&info.id, tx);
    Member { info, inbox }
}

fn received(m: &mut Member) -> Vec<String> {
    std::iter::from_fn(|| m.inbox.try_recv().ok())
        .map(|s| s.to_string())
        .collect()
}

fn room() -> Room {
    Room::new(RoomId::parse("r").unwrap(), 16)
}

#[test]
fn everyone_else_in_the_room_gets_a_copy_and_the_sender_none() {
    let (room, counters) = (room(), DataCounters::default());
    let mut ada = member(&room, "ada", 8);
    let mut bob = member(&room, "bob", 8);
    let mut cy = member(&room, "cy", 8);
    let message: Arc<str> = r#"{"from":"ada","payload":1}"#.into();
    room.relay_data(&ada.info.id, None, &message, &counters);
    assert_eq!(received(&mut bob), vec![message.to_string()]);
    assert_eq!(received(&mut cy), vec![message.to_string()]);
    assert!(received(&mut ada).is_empty());
    assert_eq!(
        counters
            .delivered
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[test]
fn to_reaches_only_the_named_and_never_the_sender_or_strangers() {
    let (room, counters) = (room(), DataCounters::default());
    let mut ada = member(&room, "ada", 8);
    let mut bob = member(&room, "bob", 8);
    let mut cy = member(&room, "cy", 8);
    let to = ["bob".to_owned(), "ada".to_owned(), "nobody".to_owned()];
    room.relay_data(&ada.info.id, Some(&to), &"m".into(), &counters);
    assert_eq!(received(&mut bob), vec!["m"]);
    assert!(received(&mut cy).is_empty());
    assert!(received(&mut ada).is_empty());
}

#[test]
fn a_slow_receivers_full_backlog_drops_its_copies_alone_and_counts_them() {
    let (room, counters) = (room(), DataCounters::default());
    let ada = member(&room, "ada", 8);
    let mut slow = member(&room, "slow", 2);
    let mut quick = member(&room, "quick", 8);
    for n in 0..5 {
        room.relay_data(&ada.info.id, None, &n.to_string().into(), &counters);
    }
    assert_eq!(received(&mut slow), vec!["0", "1"]);
    assert_eq!(received(&mut quick), vec!["0", "1", "2", "3", "4"]);
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(load(&counters.dropped), 3);
    assert_eq!(load(&counters.delivered), 7);
}

#[test]
fn nothing_is_relayed_from_someone_who_left() {
    let (room, counters) = (room(), DataCounters::default());
    let ada = member(&room, "ada", 8);
    let mut bob = member(&room, "bob", 8);
    room.remove(&ada.info.id);
    room.relay_data(&ada.info.id, None, &"late".into(), &counters);
    assert!(received(&mut bob).is_empty());
}
