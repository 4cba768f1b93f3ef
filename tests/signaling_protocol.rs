//! The signaling protocol over a real WebSocket: membership messages, and bad input of every kind
//! answered with a clear error code while the connection stays usable.

mod support;

use std::time::Duration;

use roomcast_sfu::SfuConfig;
use serde_json::{json, Value};
use support::{TestServer, Ws};

async fn server() -> TestServer {
    TestServer::start(SfuConfig::default()).await
}

async fn expect_error(ws: &mut Ws, code: &str) -> Value {
    let message = ws.recv_skipping_candidates().await;
    assert_eq!(message["type"], "error", "expected an error, got {message}");
    assert_eq!(message["code"], code, "{message}");
    assert!(message["message"].as_str().is_some_and(|m| !m.is_empty()));
    message
}

#[tokio::test]
async fn joined_lists_the_others_and_they_hear_of_arrivals_and_departures() {
    let server = server().await;
    let mut ada = server.ws().await;
    let joined = ada.join("hall", "Ada").await;
    assert_eq!(joined["room"], "hall");
    assert_eq!(joined["participants"], json!([]));
    assert!(joined["ice_servers"].is_array());
    let ada_id = joined["id"].as_str().unwrap().to_owned();

    let mut bob = server.ws().await;
    let joined = bob.join("hall", "Bob").await;
    let fresh = |id: &str, name: &str| json!({"id": id, "name": name, "audio_muted": false, "video_muted": false, "publishes": []});
    assert_eq!(joined["participants"], json!([fresh(&ada_id, "Ada")]));
    let bob_id = joined["id"].as_str().unwrap().to_owned();

    let arrival = ada.recv_type("participant_joined").await;
    assert_eq!(arrival["participant"], fresh(&bob_id, "Bob"));

    bob.send(json!({"type": "leave"})).await;
    assert_eq!(bob.recv_type("left").await["room"], "hall");
    assert_eq!(
        ada.recv_type("participant_left").await["id"],
        bob_id.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_arrivals_and_departures_reaches_a_member_whole() {
    // A member's events go out several to a flush when they pile up (a storm of leaves in a
    // large room); none may be lost, duplicated or reordered on the way.
    // Under the default 32 connections per address.
    const OTHERS: usize = 30;
    let server = TestServer::start(SfuConfig {
        room_capacity: OTHERS + 1,
        ..SfuConfig::default()
    })
    .await;
    let mut ada = server.ws().await;
    ada.join("burst", "Ada").await;
    let mut others = Vec::new();
    for n in 0..OTHERS {
        let mut ws = server.ws().await;
        let id = ws.join("burst", &format!("guest {n}")).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        others.push((id, ws));
    }
    let mut order = Vec::new();
    // Ada reads nothing meanwhile: her events pile up and leave several to a write.
    for (id, ws) in &mut others {
        ws.send(json!({"type": "leave"})).await;
        order.push(id.clone());
    }
    let mut joined = Vec::new();
    let mut left = Vec::new();
    while left.len() < OTHERS {
        let message = ada.recv_skipping_candidates().await;
        let id = |m: &Value| m.as_str().unwrap().to_owned();
        match message["type"].as_str() {
            Some("participant_joined") => joined.push(id(&message["participant"]["id"])),
            Some("participant_left") => {
                let gone = id(&message["id"]);
                assert!(joined.contains(&gone), "{gone} left before it joined");
                left.push(gone);
            }
            _ => {}
        }
    }
    assert_eq!(joined, order, "every arrival, in the order they joined");
    // A departure is announced once the leaver's connection is torn down, which for leavers in
    // quick succession may finish in any order.
    left.sort();
    order.sort();
    assert_eq!(left, order, "every departure, once");
}

#[tokio::test]
async fn one_past_capacity_gets_full_and_may_try_elsewhere() {
    let server = TestServer::start(SfuConfig {
        room_capacity: 2,
        ..SfuConfig::default()
    })
    .await;
    let mut a = server.ws().await;
    a.join("pair", "A").await;
    let mut b = server.ws().await;
    b.join("pair", "B").await;
    let mut c = server.ws().await;
    c.send(json!({"type": "join", "room": "pair", "name": "C"}))
        .await;
    let full = c.recv().await.unwrap();
    assert_eq!(full, json!({"type": "full", "room": "pair", "capacity": 2}));
    c.join("other", "C").await;
}

#[tokio::test]
async fn malformed_frames_get_errors_and_the_connection_still_joins() {
    let server = server().await;
    let mut ws = server.ws().await;
    let cases: &[(&str, &str)] = &[
        ("{not json", "bad_json"),
        ("", "bad_json"),
        ("[1,2,3]", "invalid_message"),
        (r#"{"room":"r"}"#, "invalid_message"),
        (r#"{"type":"teleport"}"#, "unknown_type"),
        (r#"{"type":"join"}"#, "invalid_message"),
        (r#"{"type":"join","room":42}"#, "invalid_message"),
        (r#"{"type":"join","room":"bad room!"}"#, "invalid_room"),
        (r#"{"type":"join","room":""}"#, "invalid_room"),
        (r#"{"type":"offer","sdp":"v=0"}"#, "not_joined"),
        (r#"{"type":"answer","sdp":"v=0"}"#, "not_joined"),
        (r#"{"type":"candidate","candidate":null}"#, "not_joined"),
        (r#"{"type":"leave"}"#, "not_joined"),
    ];
    for (frame, code) in cases {
        ws.send_text(frame).await;
        expect_error(&mut ws, code).await;
    }
    let long_name = "n".repeat(65);
    ws.send(json!({"type": "join", "room": "r", "name": long_name}))
        .await;
    expect_error(&mut ws, "invalid_name").await;
    ws.send(json!({"type": "join", "room": "x".repeat(65)}))
        .await;
    expect_error(&mut ws, "invalid_room").await;
    ws.send_binary(vec![0xde, 0xad, 0xbe, 0xef]).await;
    expect_error(&mut ws, "binary_frame").await;
    ws.join("survivor", "Still here").await;
}

#[tokio::test]
async fn a_message_past_the_size_limit_closes_that_connection_only() {
    let server = server().await;
    let mut verbose = server.ws().await;
    verbose.join("big", "Verbose").await;
    let mut other = server.ws().await;
    other.join("big", "Other").await;
    // Never buffered whole: refused as soon as its length is read.
    let huge = json!({"type": "offer", "sdp": "a".repeat(1200 * 1024)});
    verbose.try_send_text(&huge.to_string()).await;
    assert!(verbose.closed_within(Duration::from_secs(5)).await);
    other.send(json!({"type": "leave"})).await;
    other.recv_type("left").await;
}

#[tokio::test]
async fn messages_in_the_wrong_state_are_refused_without_leaving_the_room() {
    let server = server().await;
    let mut ws = server.ws().await;
    ws.join("strict", "Ada").await;

    ws.send(json!({"type": "join", "room": "strict"})).await;
    expect_error(&mut ws, "already_joined").await;
    ws.send(json!({"type": "answer", "sdp": "v=0"})).await;
    expect_error(&mut ws, "wrong_state").await;
    let candidate = json!({"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0});
    ws.send(json!({"type": "candidate", "candidate": candidate}))
        .await;
    expect_error(&mut ws, "wrong_state").await;
    ws.send(json!({"type": "offer", "sdp": "this is not SDP"}))
        .await;
    expect_error(&mut ws, "bad_sdp").await;
    ws.send(json!({"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"})).await;
    expect_error(&mut ws, "bad_sdp").await;

    let room = server.sfu.room("strict").expect("still in the room");
    assert_eq!(room.participants.len(), 1);

    ws.send(json!({"type": "leave"})).await;
    assert_eq!(ws.recv_type("left").await["room"], "strict");
    ws.send(json!({"type": "leave"})).await;
    expect_error(&mut ws, "not_joined").await;
    ws.join("strict", "Ada again").await;
}

#[tokio::test]
async fn rooms_are_cleaned_up_however_the_last_participant_goes() {
    let server = server().await;
    let mut polite = server.ws().await;
    polite.join("a", "Polite").await;
    let mut abrupt = server.ws().await;
    abrupt.join("b", "Abrupt").await;
    let mut closer = server.ws().await;
    closer.join("c", "Closer").await;
    assert_eq!(server.sfu.rooms().len(), 3);

    polite.send(json!({"type": "leave"})).await;
    polite.recv_type("left").await;
    drop(abrupt);
    closer.close().await;
    server.wait_until_empty().await;
}

#[tokio::test]
async fn one_clients_garbage_does_not_disturb_another_in_the_same_room() {
    let server = server().await;
    let mut good = server.ws().await;
    good.join("shared", "Good").await;
    let mut bad = server.ws().await;
    bad.join("shared", "Bad").await;
    good.recv_type("participant_joined").await;
    for frame in [
        "{",
        r#"{"type":"offer","sdp":"junk"}"#,
        r#"{"type":"answer","sdp":"junk"}"#,
    ] {
        bad.send_text(frame).await;
    }
    bad.send(json!({"type": "leave"})).await;
    let next = good.recv_skipping_candidates().await;
    assert_eq!(
        next["type"], "participant_left",
        "the good client only hears that Bad left: {next}"
    );
}
