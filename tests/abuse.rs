//! What an unauthenticated client on the open internet can make the server spend, and how little:
//! log lines, memory for messages it never finishes, sockets it never uses, and the operator's
//! patience at shutdown. Each bound is measured against the real binary or server, in bounded time.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use roomcast_sfu::SfuConfig;
use roomcast_signaling::{EdgeLimits, EdgeOptions};
use support::binary::Roomcast;
use support::{TestServer, Ws};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A refused message that tries to write its own log line, with colours, and to quote a long
/// unknown field in serde's error text.
fn forging_message() -> String {
    let field = format!(
        "{}\nFORGED  WARN roomcast: pwned\u{1b}[31m",
        "f".repeat(2000)
    );
    serde_json::json!({"type": "join", "room": "r", field: 1}).to_string()
}

/// Reconnects and sends refused messages as fast as it can until `deadline`, also knocking with a
/// 100 KB foreign Origin each round. Returns the attempts and the connections the server accepted.
async fn flood(addr: SocketAddr, deadline: tokio::time::Instant) -> (usize, usize) {
    let junk = forging_message();
    let origin = format!("https://{}.example", "o".repeat(100_000));
    let (mut attempts, mut accepted) = (0, 0);
    while tokio::time::Instant::now() < deadline {
        attempts += 1;
        let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        let _ = tokio_tungstenite::connect_async(request).await;
        let Ok(mut ws) = Ws::try_connect_from(addr, loopback(1)).await else {
            continue;
        };
        accepted += 1;
        while tokio::time::Instant::now() < deadline && ws.try_send_text(&junk).await {}
    }
    (attempts, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_seconds_of_refused_messages_from_eight_reconnecting_clients_log_under_a_megabyte() {
    let log = std::env::temp_dir().join(format!("roomcast-flood-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let mut command = Roomcast::command();
    command.env_remove("RUST_LOG").arg("--log-file").arg(&log);
    let server = Roomcast::spawn(&mut command);
    let before = std::fs::metadata(&log).map_or(0, |m| m.len());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let flooders: Vec<_> = (0..8)
        .map(|_| tokio::spawn(flood(server.addr, deadline)))
        .collect();
    let (mut attempts, mut accepted) = (0, 0);
    for flooder in flooders {
        let (tried, got_in) = flooder.await.unwrap();
        attempts += tried;
        accepted += got_in;
    }
    assert!(accepted >= 1, "the flood got in");

    let logged = std::fs::read(&log).unwrap();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&log).unwrap().permissions());
    let _ = std::fs::remove_file(&log);
    assert_eq!(mode & 0o777, 0o600, "the log file is its owner's alone");
    let grown = logged.len() as u64 - before;
    eprintln!("log grew by {grown} bytes: {attempts} attempts, {accepted} connections accepted");
    assert!(grown < 1024 * 1024, "the log grew by {grown} bytes");
    let text = String::from_utf8_lossy(&logged);
    assert!(
        text.lines()
            .any(|l| l.contains(" WARN ") && l.contains("closing an abusive connection")),
        "roomcast's own warnings still reach the log"
    );

    assert!(!text.contains('\u{1b}'), "a client wrote a terminal escape");
    assert!(
        !text.lines().any(|l| l.starts_with("FORGED")),
        "a client wrote a log line"
    );
    assert!(
        text.lines().all(|l| l.len() < 2000),
        "a client's long text reached the log whole"
    );
    let refusals: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("refused client message"))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for line in &refusals {
        let conn = line
            .split("conn=")
            .nth(1)
            .and_then(|r| r.split(['}', ' ']).next());
        let code = line.split("code=").nth(1).and_then(|r| r.split(' ').next());
        assert!(
            seen.insert((conn, code)),
            "one connection logged one refusal twice: {line}"
        );
    }
}

fn limits(limits: EdgeLimits) -> EdgeOptions {
    EdgeOptions {
        limits,
        ..EdgeOptions::default()
    }
}

#[tokio::test]
async fn an_address_closed_as_abusive_must_wait_while_other_addresses_carry_on() {
    let server = TestServer::start_with(
        SfuConfig::default(),
        limits(EdgeLimits {
            max_strikes: 3,
            ..EdgeLimits::default()
        }),
    )
    .await;
    let mut abuser = Ws::connect_from(server.addr, loopback(1)).await;
    for _ in 0..5 {
        abuser.send_text("{").await;
    }
    let mut last = serde_json::Value::Null;
    while let Some(message) = abuser.recv().await {
        last = message;
    }
    assert_eq!(last["code"], "abusive");
    let refused = Ws::try_connect_from(server.addr, loopback(1))
        .await
        .err()
        .expect("the abusive address is shut out");
    assert!(refused.to_string().contains("429"), "{refused}");
    let mut other = Ws::connect_from(server.addr, loopback(2)).await;
    other.join("calm", "Other").await;
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    let server = TestServer::start_with(
        SfuConfig::default(),
        limits(EdgeLimits {
            max_connections_per_address: 3,
            ..EdgeLimits::default()
        }),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(Ws::connect_from(server.addr, loopback(1)).await);
    }
    let refused = Ws::try_connect_from(server.addr, loopback(1))
        .await
        .err()
        .expect("the address's connections are used up");
    assert!(refused.to_string().contains("429"), "{refused}");
    let mut other = Ws::connect_from(server.addr, loopback(2)).await;
    other.join("open", "From elsewhere").await;

    held.pop().unwrap().close().await;
    support::eventually("a slot to come back", || async {
        Ws::try_connect_from(server.addr, loopback(1)).await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn a_connection_that_does_not_join_in_time_is_closed() {
    let server = TestServer::start_with(
        SfuConfig::default(),
        limits(EdgeLimits {
            join_timeout: Duration::from_secs(2),
            ..EdgeLimits::default()
        }),
    )
    .await;
    let mut idle = server.ws().await;
    let mut joined = server.ws().await;
    joined.join("room", "Punctual").await;
    assert!(idle.closed_within(Duration::from_secs(5)).await);
    assert!(
        !joined.closed_within(Duration::from_secs(1)).await,
        "a member stays"
    );
}

#[tokio::test]
async fn a_connection_that_stops_answering_pings_is_dropped() {
    let server = TestServer::start_with(
        SfuConfig::default(),
        limits(EdgeLimits {
            ping_interval: Duration::from_secs(2),
            ..EdgeLimits::default()
        }),
    )
    .await;
    let mut answering = server.ws().await;
    answering.join("room", "Alive").await;
    let mut silent = server.ws().await;
    silent.join("room", "Gone quiet").await;
    // Reading is what makes the client answer pings: the silent one does not read for a while.
    assert!(
        !answering.closed_within(Duration::from_secs(7)).await,
        "a client that answers stays"
    );
    assert!(
        silent.closed_within(Duration::from_secs(3)).await,
        "a client that did not answer for two intervals is gone"
    );
}

#[tokio::test]
async fn a_message_left_unfinished_is_cut_off() {
    let server = TestServer::start_with(
        SfuConfig::default(),
        limits(EdgeLimits {
            unfinished_timeout: Duration::from_secs(2),
            ..EdgeLimits::default()
        }),
    )
    .await;
    let mut slow = server.ws().await;
    slow.join("room", "Never done").await;
    assert!(slow.send_unfinished(200 * 1024).await);
    assert!(slow.closed_within(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_connections_holding_unfinished_messages_cost_under_50_mb() {
    let server = Roomcast::start(&[]);
    let baseline = server.rss_kib();
    let mut held = Vec::new();
    for n in 0..100u8 {
        // One address each: neither the per-address cap nor one address's ban is what stops them.
        let mut ws = Ws::connect_from(server.addr, loopback(10 + n)).await;
        ws.send_unfinished(1024 * 1024 - 1024).await;
        held.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let holding = server.rss_kib();
    let grown_mb = holding.saturating_sub(baseline) as f64 / 1024.0;
    eprintln!(
        "RSS {baseline} KiB -> {holding} KiB ({grown_mb:.1} MB) with 100 unfinished messages"
    );
    assert!(grown_mb < 50.0, "RSS grew by {grown_mb:.1} MB");
}

#[tokio::test]
async fn unfinished_request_headers_are_cut_off_after_ten_seconds() {
    let server = TestServer::start(SfuConfig::default()).await;
    let mut idle = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut partial = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    partial
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let limit = roomcast_signaling::HEADER_TIMEOUT + Duration::from_secs(3);
    for stream in [&mut idle, &mut partial] {
        let mut buf = [0; 1024];
        let read = tokio::time::timeout(limit, stream.read(&mut buf))
            .await
            .expect("the server kept a connection without a request open");
        assert!(matches!(read, Ok(0) | Err(_)) || buf.starts_with(b"HTTP/1.1 408"));
    }
    eprintln!("closed after {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_five_seconds_whatever_clients_hold_open() {
    let mut server = Roomcast::start(&[]);
    let mut partial = std::net::TcpStream::connect(server.addr).unwrap();
    std::io::Write::write_all(&mut partial, b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let _idle = std::net::TcpStream::connect(server.addr).unwrap();
    let _unjoined = Ws::connect(server.addr).await;
    let mut unfinished = Ws::connect(server.addr).await;
    unfinished.join("room", "Holding").await;
    unfinished.send_unfinished(100_000).await;
    let mut body = std::net::TcpStream::connect(server.addr).unwrap();
    std::io::Write::write_all(
        &mut body,
        b"POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    server.terminate();
    let status = tokio::task::block_in_place(|| server.wait(Duration::from_secs(5)));
    eprintln!("exited {:?} after SIGTERM", started.elapsed());
    assert!(status.success(), "{status:?}");
}
