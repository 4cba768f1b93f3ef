//! Data channels: what a participant writes on its `data` channel reaches the others in its room
//! (or the ones it names), never itself, never another room; bad, oversized and excessive
//! messages are refused with an error to their sender alone and counted; a receiver that stops
//! reading loses its own copies (counted) and slows no one else.

mod support;

use std::time::Duration;

use roomcast_sfu::{SfuConfig, SfuLimits, MAX_DATA_MESSAGE_BYTES};
use serde_json::{json, Value};
use support::client_peer::ClientPeer;
use support::{eventually, TestServer};

async fn server_with_rate(per_second: f64) -> TestServer {
    TestServer::start(SfuConfig {
        limits: SfuLimits {
            data_messages_per_second: per_second,
            ..SfuLimits::default()
        },
        ..SfuConfig::default()
    })
    .await
}

/// A counter's value in `/metrics`.
async fn metric(server: &TestServer, series: &str) -> u64 {
    let (_, text) = server.http_get("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{series} not in /metrics"))
}

async fn wait_for_data(peer: &ClientPeer, count: usize, what: &str) -> Vec<Value> {
    eventually(what, || async { peer.data.received().len() >= count }).await;
    peer.data.received()
}

#[tokio::test]
async fn a_message_reaches_everyone_else_in_the_room_with_its_senders_id() {
    let server = TestServer::start(SfuConfig::default()).await;
    let ada = ClientPeer::join(&server, "chat", "Ada").await;
    let bob = ClientPeer::join(&server, "chat", "Bob").await;
    let cy = ClientPeer::join(&server, "chat", "Cy").await;
    let elsewhere = ClientPeer::join(&server, "other", "Eve").await;

    let payload = json!({"kind": "chat", "text": "hello <everyone> & \"you\""});
    ada.data
        .send(&json!({ "payload": payload }).to_string())
        .await;
    let expected = json!({"from": ada.id, "payload": payload});
    assert_eq!(
        wait_for_data(&bob, 1, "Bob to get it").await,
        vec![expected.clone()]
    );
    assert_eq!(wait_for_data(&cy, 1, "Cy to get it").await, vec![expected]);

    // The sender and another room get nothing: by the time a later message from Bob has reached
    // Ada, hers would have come back to her too.
    bob.data.send(r#"{"payload":"hi Ada"}"#).await;
    let got = wait_for_data(&ada, 1, "Ada to get Bob's reply").await;
    assert_eq!(got, vec![json!({"from": bob.id, "payload": "hi Ada"})]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(elsewhere.data.received().is_empty());
    assert_eq!(
        metric(&server, "roomcast_data_messages_relayed_total").await,
        4,
        "two copies of each message"
    );
}

#[tokio::test]
async fn to_sends_only_to_the_participants_named() {
    let server = TestServer::start(SfuConfig::default()).await;
    let ada = ClientPeer::join(&server, "dm", "Ada").await;
    let bob = ClientPeer::join(&server, "dm", "Bob").await;
    let cy = ClientPeer::join(&server, "dm", "Cy").await;
    let message = json!({"payload": "psst", "to": [bob.id]});
    ada.data.send(&message.to_string()).await;
    wait_for_data(&bob, 1, "Bob to get the private message").await;
    // A message to everyone sent after it reaches Cy after it would have.
    ada.data.send(r#"{"payload":"all"}"#).await;
    let got = wait_for_data(&cy, 1, "Cy to get the message to all").await;
    assert_eq!(got, vec![json!({"from": ada.id, "payload": "all"})]);
}

#[tokio::test]
async fn bad_and_oversized_messages_are_refused_to_their_sender_alone_and_counted() {
    let server = TestServer::start(SfuConfig::default()).await;
    let ada = ClientPeer::join(&server, "strict", "Ada").await;
    let bob = ClientPeer::join(&server, "strict", "Bob").await;

    ada.data.send("{this is not json").await;
    let huge = format!(r#"{{"payload":"{}"}}"#, "x".repeat(MAX_DATA_MESSAGE_BYTES));
    ada.data.send(&huge).await;
    ada.data.send(r#"{"to":["nobody"]}"#).await;
    eventually("Ada to be told of all three", || async {
        let codes: Vec<Value> = ada.errors().iter().map(|e| e["code"].clone()).collect();
        codes
            == [
                json!("bad_json"),
                json!("too_large"),
                json!("invalid_message"),
            ]
    })
    .await;
    // The channel still works, and Bob saw none of it.
    ada.data.send(r#"{"payload":"fine"}"#).await;
    let got = wait_for_data(&bob, 1, "Bob to get the good message").await;
    assert_eq!(got, vec![json!({"from": ada.id, "payload": "fine"})]);
    assert!(bob.errors().is_empty());
    for reason in ["bad_json", "too_large", "invalid"] {
        let series = format!("roomcast_data_messages_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&server, &series).await, 1, "{series}");
    }
}

#[tokio::test]
async fn past_its_rate_a_senders_messages_are_dropped_and_it_is_told() {
    let server = server_with_rate(5.0).await;
    let ada = ClientPeer::join(&server, "flood", "Ada").await;
    let bob = ClientPeer::join(&server, "flood", "Bob").await;
    for n in 0..30 {
        ada.data.send(&json!({ "payload": n }).to_string()).await;
    }
    eventually("Ada to be told she is over her rate", || async {
        ada.errors().iter().any(|e| e["code"] == "rate_limited")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = bob.data.received().len();
    assert!((5..=8).contains(&got), "the burst and a little more: {got}");
    let told = ada.errors().len();
    assert!(
        told <= 2,
        "told about once a second, not per message: {told}"
    );
    let series = "roomcast_data_messages_rejected_total{reason=\"rate_limited\"}";
    assert_eq!(metric(&server, series).await, 30 - got as u64);
}

#[tokio::test]
async fn a_receiver_that_stops_reading_loses_its_own_copies_and_no_one_elses() {
    let server = server_with_rate(10_000.0).await;
    let ada = ClientPeer::join(&server, "slow", "Ada").await;
    let slow = ClientPeer::join(&server, "slow", "Slow").await;
    let quick = ClientPeer::join(&server, "slow", "Quick").await;
    ada.data.send(r#"{"payload":"warm-up"}"#).await;
    wait_for_data(&slow, 1, "the slow one to be reached at all").await;
    wait_for_data(&quick, 1, "the quick one to be reached at all").await;
    slow.data.stall(true);

    // Past what the SCTP buffers and the slow one's backlog of 256 messages hold.
    let sent = 600;
    let filler = "x".repeat(MAX_DATA_MESSAGE_BYTES - 64);
    for n in 0..sent {
        let message = json!({"payload": {"n": n, "filler": filler}});
        ada.data.send(&message.to_string()).await;
    }
    let got = wait_for_data(&quick, sent + 1, "the quick one to get every message").await;
    let order: Vec<u64> = got[1..]
        .iter()
        .map(|m| m["payload"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(order, (0..sent as u64).collect::<Vec<_>>(), "all, in order");
    eventually("the slow one's drops to be counted", || async {
        metric(&server, "roomcast_data_messages_dropped_total").await > 0
    })
    .await;
    let dropped = metric(&server, "roomcast_data_messages_dropped_total").await;

    slow.data.stall(false);
    let expected = sent + 1 - dropped as usize;
    let got = wait_for_data(&slow, expected, "the slow one to get what was kept").await;
    assert_eq!(got.len(), expected, "nothing dropped but what was counted");
    assert!(ada.errors().is_empty(), "the sender did nothing wrong");
}
