//! Bounds and access control at the edge: every limit answers with its own error code and harms
//! no one else; abusive connections are closed; room tokens decide who gets in and what they may
//! do; foreign pages cannot open the signaling socket.

mod support;

use std::time::{Duration, SystemTime};

use roomcast_sfu::{Grants, SfuConfig, SfuLimits};
use roomcast_signaling::{EdgeLimits, EdgeOptions, RoomTokens};
use serde_json::{json, Value};
use support::client_peer::ClientPeer;
use support::{eventually, TestServer, Ws};

async fn expect_error(ws: &mut Ws, code: &str) -> Value {
    let message = ws.recv_skipping_candidates().await;
    assert_eq!(message["type"], "error", "expected an error, got {message}");
    assert_eq!(message["code"], code, "{message}");
    message
}

fn limited(limits: SfuLimits) -> SfuConfig {
    SfuConfig {
        limits,
        ..SfuConfig::default()
    }
}

fn candidate(n: u32) -> Value {
    json!({"type": "candidate", "candidate": {
        "candidate": format!("candidate:{n} 1 udp 2130706431 127.0.0.1 {} typ host", 40000 + n),
        "sdpMid": "0", "sdpMLineIndex": 0}})
}

#[tokio::test]
async fn the_server_opens_no_more_rooms_and_admits_no_more_people_than_configured() {
    let server = TestServer::start(limited(SfuLimits {
        max_rooms: 2,
        max_participants: 3,
        ..SfuLimits::default()
    }))
    .await;
    let mut a = server.ws().await;
    a.join("one", "A").await;
    let mut b = server.ws().await;
    b.join("two", "B").await;
    let mut c = server.ws().await;
    c.send(json!({"type": "join", "room": "three"})).await;
    expect_error(&mut c, "too_many_rooms").await;
    c.join("two", "C").await;
    let mut d = server.ws().await;
    d.send(json!({"type": "join", "room": "one"})).await;
    expect_error(&mut d, "server_full").await;

    a.send(json!({"type": "leave"})).await;
    a.recv_type("left").await;
    eventually("a seat to free up", || async {
        server.sfu.participant_count() == 2
    })
    .await;
    d.join("three", "D").await;
}

#[tokio::test]
async fn candidates_past_the_limit_and_oversized_sdp_are_refused_in_the_room() {
    let server = TestServer::start(limited(SfuLimits {
        max_candidates: 3,
        max_sdp_bytes: 1024,
        ..SfuLimits::default()
    }))
    .await;
    let mut ws = server.ws().await;
    ws.join("bounded", "Ada").await;
    ws.send(json!({"type": "offer", "sdp": format!("v=0\r\n{}", "a=x\r\n".repeat(300))}))
        .await;
    expect_error(&mut ws, "too_large").await;
    for n in 0..3 {
        // Refused for coming before any offer, but counted all the same.
        ws.send(candidate(n)).await;
        expect_error(&mut ws, "wrong_state").await;
    }
    ws.send(candidate(3)).await;
    let refused = expect_error(&mut ws, "too_many_candidates").await;
    assert!(refused["message"].as_str().unwrap().contains('3'));
    assert_eq!(server.sfu.room("bounded").unwrap().participants.len(), 1);
}

#[tokio::test]
async fn a_flooding_connection_is_slowed_then_closed_while_others_carry_on() {
    let options = EdgeOptions {
        limits: EdgeLimits {
            // Room enough for a real client's offer, candidates and answers.
            messages_per_second: 5.0,
            message_burst: 20.0,
            max_strikes: 30,
            ..EdgeLimits::default()
        },
        ..EdgeOptions::default()
    };
    let server = TestServer::start_with(SfuConfig::default(), options).await;
    let calm = ClientPeer::join(&server, "busy", "Calm").await;
    let other = ClientPeer::join(&server, "busy", "Other").await;
    eventually("media between the calm clients", || async {
        calm.received_from(&other.id).video > 0
    })
    .await;

    let mut flood = server.ws().await;
    for _ in 0..200 {
        flood.send_text(r#"{"type":"leave"}"#).await;
    }
    let mut codes = Vec::new();
    while let Some(message) = flood.recv().await {
        codes.push(message["code"].as_str().unwrap_or_default().to_owned());
    }
    assert!(codes.contains(&"rate_limited".to_owned()), "{codes:?}");
    assert_eq!(
        codes.last().map(String::as_str),
        Some("abusive"),
        "closed with a reason"
    );
    assert!(codes.len() < 40, "the server stopped answering: {codes:?}");

    // The flooder's address must now wait (see tests/abuse.rs): these come from others.
    let mut pinger = Ws::connect_from(server.addr, [127, 0, 0, 2].into()).await;
    for _ in 0..200 {
        pinger.send_ping().await;
    }
    let mut last = Value::Null;
    while let Some(message) = pinger.recv().await {
        last = message;
    }
    assert_eq!(last["code"], "abusive", "a ping flood is closed too");

    let before = calm.received_from(&other.id);
    eventually("media to keep flowing", || async {
        calm.received_from(&other.id).video > before.video + 10
    })
    .await;
    let mut fresh = Ws::connect_from(server.addr, [127, 0, 0, 3].into()).await;
    fresh.join("busy", "Fresh").await;
}

fn with_tokens(secret: &str) -> EdgeOptions {
    EdgeOptions {
        room_tokens: Some(RoomTokens::new(secret.as_bytes())),
        ..EdgeOptions::default()
    }
}

fn token(secret: &str, room: &str, identity: &str, grants: Grants) -> String {
    RoomTokens::new(secret.as_bytes()).mint(&RoomTokens::claims(
        room,
        identity,
        Duration::from_secs(600),
        grants,
        SystemTime::now(),
    ))
}

#[tokio::test]
async fn with_a_token_secret_only_a_valid_token_for_the_room_gets_in() {
    let server = TestServer::start_with(SfuConfig::default(), with_tokens("k")).await;
    let mut ws = server.ws().await;
    ws.send(json!({"type": "join", "room": "vault"})).await;
    expect_error(&mut ws, "unauthorized").await;
    let elsewhere = token("k", "lobby", "Ada", Grants::ALL);
    ws.send(json!({"type": "join", "room": "vault", "token": elsewhere}))
        .await;
    expect_error(&mut ws, "unauthorized").await;
    let forged = token("guess", "vault", "Ada", Grants::ALL);
    ws.send(json!({"type": "join", "room": "vault", "token": forged}))
        .await;
    expect_error(&mut ws, "unauthorized").await;
    let expired = RoomTokens::new(b"k").mint(&RoomTokens::claims(
        "vault",
        "Ada",
        Duration::from_secs(60),
        Grants::ALL,
        SystemTime::now() - Duration::from_secs(3600),
    ));
    ws.send(json!({"type": "join", "room": "vault", "token": expired}))
        .await;
    let refused = expect_error(&mut ws, "unauthorized").await;
    assert!(refused["message"].as_str().unwrap().contains("expired"));

    let good = token("k", "vault", "Ada Lovelace", Grants::ALL);
    ws.send(json!({"type": "join", "room": "vault", "name": "Mallory", "token": good}))
        .await;
    ws.recv_type("joined").await;
    let room = server.sfu.room("vault").unwrap();
    assert_eq!(
        room.participants[0].name.as_str(),
        "Ada Lovelace",
        "the token's identity is the name"
    );
}

#[tokio::test]
async fn a_second_join_with_the_same_identity_replaces_the_first() {
    let server = TestServer::start_with(SfuConfig::default(), with_tokens("k")).await;
    let ada = token("k", "desk", "Ada", Grants::ALL);
    let mut first = server.ws().await;
    first
        .send(json!({"type": "join", "room": "desk", "token": ada}))
        .await;
    first.recv_type("joined").await;
    let mut bob = server.ws().await;
    bob.send(
        json!({"type": "join", "room": "desk", "token": token("k", "desk", "Bob", Grants::ALL)}),
    )
    .await;
    bob.recv_type("joined").await;

    let mut second = server.ws().await;
    second
        .send(json!({"type": "join", "room": "desk", "token": ada}))
        .await;
    let joined = second.recv_type("joined").await;
    let kicked = first.recv_type("kicked").await;
    assert_eq!(kicked["reason"], "duplicate_identity");
    assert!(first.recv().await.is_none(), "then its connection closes");
    eventually("one Ada in the room", || async {
        let room = server.sfu.room("desk").unwrap();
        room.participants
            .iter()
            .filter(|p| p.name.as_str() == "Ada")
            .count()
            == 1
    })
    .await;
    let room = server.sfu.room("desk").unwrap();
    assert!(room
        .participants
        .iter()
        .any(|p| p.id.as_str() == joined["id"]));
    assert_eq!(room.participants.len(), 2, "Bob is not affected");
}

#[tokio::test]
async fn a_participant_that_never_sets_up_media_is_removed_after_the_peer_timeout() {
    let server = TestServer::start(SfuConfig {
        peer_timeout: Duration::from_secs(2),
        ..SfuConfig::default()
    })
    .await;
    let mut squatter = server.ws().await;
    squatter.join("seats", "Squatter").await;
    let kicked = squatter.recv_type("kicked").await;
    assert_eq!(kicked["reason"], "negotiation_timeout");
    server.wait_until_empty().await;

    let media = ClientPeer::join(&server, "seats", "Real").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        server.sfu.room("seats").unwrap().participants.len(),
        1,
        "one who negotiated stays"
    );
    media.close().await;
}

#[tokio::test]
async fn a_viewer_token_receives_but_publishes_nothing() {
    let server = TestServer::start_with(SfuConfig::default(), with_tokens("k")).await;
    let speaker =
        ClientPeer::join_with_token(&server, "talk", &token("k", "talk", "Speaker", Grants::ALL))
            .await;
    let viewer = Grants {
        publish: false,
        subscribe: true,
    };
    let audience =
        ClientPeer::join_with_token(&server, "talk", &token("k", "talk", "Audience", viewer)).await;
    eventually("the viewer to receive the speaker", || async {
        let got = audience.received_from(&speaker.id);
        got.audio >= 10 && got.video >= 10
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        speaker.received_from(&audience.id),
        Default::default(),
        "nothing of the viewer is forwarded"
    );
    let report = server.sfu.room("talk").unwrap();
    let published: usize = report.participants.iter().map(|p| p.published.len()).sum();
    assert_eq!(published, 2, "only the speaker's audio and video");
    // Not even sent to be dropped: the viewer's sending sections were answered inactive.
    let sdp = audience.remote_sdp().await;
    assert!(!sdp.contains("a=recvonly"), "{sdp}");
    assert!(sdp.contains("a=inactive"), "{sdp}");

    // Nor does anything it writes on its data channel reach anyone; it is told why.
    audience.data.send(r#"{"payload":"hello?"}"#).await;
    eventually("the viewer to be told it may not send", || async {
        audience
            .errors()
            .iter()
            .any(|e| e["code"] == "unauthorized")
    })
    .await;
    speaker.data.send(r#"{"payload":"welcome"}"#).await;
    eventually("the viewer to receive the speaker's message", || async {
        !audience.data.received().is_empty()
    })
    .await;
    assert!(
        speaker.data.received().is_empty(),
        "the viewer's message went nowhere"
    );
}

#[tokio::test]
async fn pages_from_another_origin_cannot_open_the_signaling_socket() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::start(SfuConfig::default()).await;
    let connect = |origin: &'static str| {
        let addr = server.addr;
        async move {
            let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
            tokio_tungstenite::connect_async(request).await
        }
    };
    let refused = connect("https://evil.example").await.unwrap_err();
    assert!(refused.to_string().contains("403"), "{refused}");
    let own = format!("http://{}", server.addr);
    let own: &'static str = Box::leak(own.into_boxed_str());
    assert!(connect(own).await.is_ok());
}
