//! The `roomcast` binary as an operator runs it: security headers on what it serves, no way out
//! of the embedded client files, and a graceful shutdown that tells participants why.

mod support;

use std::time::Duration;

use support::binary::Roomcast;
use support::Ws;

#[test]
fn pages_carry_security_headers() {
    let server = Roomcast::start(&[]);
    for path in ["/", "/app.js", "/api/rooms"] {
        let response = server.get(path).to_ascii_lowercase();
        assert!(response.starts_with("http/1.1 200"), "{path}: {response}");
        for header in [
            "content-security-policy: default-src 'none'; script-src 'self'",
            "frame-ancestors 'none'",
            "x-content-type-options: nosniff",
            "x-frame-options: deny",
            "referrer-policy: no-referrer",
        ] {
            assert!(response.contains(header), "{path} lacks {header}");
        }
    }
}

#[test]
fn no_path_reaches_outside_the_client_files() {
    let server = Roomcast::start(&[]);
    for path in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/..%2fCargo.toml",
        "/client/../Cargo.toml",
        "/app.js/../../src/main.rs",
        "//etc/passwd",
        "/%00",
    ] {
        let response = server.get(path);
        let status = response.split_whitespace().nth(1).unwrap_or_default();
        assert!(status == "404" || status == "400", "{path}: {status}");
        assert!(!response.contains("[workspace]") && !response.contains("root:"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_participants_drains_rooms_and_exits_cleanly() {
    let mut server = Roomcast::start(&[]);
    let mut ada = Ws::connect(server.addr).await;
    ada.join("evening", "Ada").await;
    let mut bob = Ws::connect(server.addr).await;
    bob.join("evening", "Bob").await;

    server.terminate();
    for ws in [&mut ada, &mut bob] {
        let kicked = ws.recv_type("kicked").await;
        assert_eq!(kicked["reason"], "server_shutdown");
        assert_eq!(kicked["room"], "evening");
        assert!(ws.recv().await.is_none(), "then the connection closes");
    }
    let status = tokio::task::block_in_place(|| server.wait(Duration::from_secs(10)));
    assert!(status.success(), "{status:?}");
}

/// Every kind of bad input, in every state, on one connection: each gets its own error code.
const TORTURE: &[(&str, &str)] = &[
    ("{not json", "bad_json"),
    ("\u{0}\u{1}", "bad_json"),
    ("[]", "invalid_message"),
    (r#"{"type":null}"#, "invalid_message"),
    (r#"{"type":"JOIN","room":"r"}"#, "unknown_type"),
    (r#"{"type":"join","room":["r"]}"#, "invalid_message"),
    (r#"{"type":"join","room":"r","name":7}"#, "invalid_message"),
    (r#"{"type":"join","room":"../etc"}"#, "invalid_room"),
    (r#"{"type":"offer","sdp":"v=0"}"#, "not_joined"),
    (r#"{"type":"answer","sdp":"v=0"}"#, "not_joined"),
    (r#"{"type":"candidate","candidate":null}"#, "not_joined"),
    (r#"{"type":"leave"}"#, "not_joined"),
];

/// The same, once in a room.
const TORTURE_IN_ROOM: &[(&str, &str)] = &[
    (r#"{"type":"join","room":"again"}"#, "already_joined"),
    (r#"{"type":"answer","sdp":"v=0"}"#, "wrong_state"),
    (
        r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0"}}"#,
        "wrong_state",
    ),
    (r#"{"type":"offer","sdp":"\u0000garbage"}"#, "bad_sdp"),
    (
        r#"{"type":"offer","sdp":"v=0\r\nm=audio 9 RTP/AVP 0\r\n"}"#,
        "bad_sdp",
    ),
];

async fn expect(ws: &mut Ws, code: &str, frame: &str) {
    let reply = ws.recv_skipping_candidates().await;
    assert_eq!(reply["code"], code, "{frame:?} got {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_torture_of_bad_input_the_same_connection_joins_and_gets_media() {
    use serde_json::json;
    use support::client_peer::{ClientPeer, NetworkType};

    let log = std::env::temp_dir().join(format!("roomcast-torture-{}.log", std::process::id()));
    let mut server = Roomcast::start_logging_to(&log);
    let mut ws = Ws::connect(server.addr).await;
    for (frame, code) in TORTURE {
        ws.send_text(frame).await;
        expect(&mut ws, code, frame).await;
    }
    ws.send_binary(vec![0; 16]).await;
    expect(&mut ws, "binary_frame", "binary").await;
    // Huge, but within what a connection may send before it joins (see tests/abuse.rs).
    ws.send_text(&format!(
        r#"{{"type":"join","room":"{}"}}"#,
        "r".repeat(50_000)
    ))
    .await;
    expect(&mut ws, "invalid_room", "huge room").await;

    ws.join("torture", "Patient").await;
    for (frame, code) in TORTURE_IN_ROOM {
        ws.send_text(frame).await;
        expect(&mut ws, code, frame).await;
    }
    ws.send_text(r#"{"type":"leave"}"#).await;
    ws.recv_type("left").await;
    ws.send_text(r#"{"type":"leave"}"#).await;
    expect(&mut ws, "not_joined", "leave twice").await;

    let join = |name: &str| json!({"type": "join", "room": "torture", "name": name});
    let patient = ClientPeer::join_on(ws, join("Patient"), NetworkType::Udp4).await;
    let fresh = ClientPeer::join_on(
        Ws::connect(server.addr).await,
        join("Fresh"),
        NetworkType::Udp4,
    )
    .await;
    support::eventually("media both ways", || async {
        patient.received_from(&fresh.id).video > 10 && fresh.received_from(&patient.id).video > 10
    })
    .await;
    patient.close().await;
    fresh.close().await;

    server.terminate();
    let status = tokio::task::block_in_place(|| server.wait(Duration::from_secs(10)));
    assert!(status.success());
    let logged = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(!logged.contains("panicked"), "{logged}");
    for (_, code) in TORTURE.iter().chain(TORTURE_IN_ROOM) {
        assert!(
            logged.contains(&format!("code=\"{code}\""))
                || logged.contains(&format!("code={code}")),
            "no log line for {code}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_join_and_leave_logs_no_warning_from_webrtc_rs() {
    use serde_json::json;
    use support::client_peer::{ClientPeer, NetworkType};

    let log = std::env::temp_dir().join(format!("roomcast-quiet-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let mut command = Roomcast::command();
    command.env_remove("RUST_LOG").arg("--log-file").arg(&log);
    let mut server = Roomcast::spawn(&mut command);
    let join = |name: &str| json!({"type": "join", "room": "quiet", "name": name});
    let ada = ClientPeer::join_on(
        Ws::connect(server.addr).await,
        join("Ada"),
        NetworkType::Udp4,
    )
    .await;
    let bob = ClientPeer::join_on(
        Ws::connect(server.addr).await,
        join("Bob"),
        NetworkType::Udp4,
    )
    .await;
    support::eventually("media both ways", || async {
        ada.received_from(&bob.id).video > 10 && bob.received_from(&ada.id).video > 10
    })
    .await;
    ada.leave().await;
    bob.close().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.terminate();
    tokio::task::block_in_place(|| server.wait(Duration::from_secs(10)));

    let logged = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let noise: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains(" webrtc"))
        .collect();
    assert!(
        noise.is_empty(),
        "webrtc-rs warned on a normal join and leave:\n{}",
        noise.join("\n")
    );
}
