//! Soak: a thousand joins and leaves, a third of them abrupt, leave the server as they found it.
//!
//! 1,000 cycles against one in-process server, 12 at a time, spread over 8 rooms so that people
//! keep meeting (and subscribing to) each other. Each block of 30 cycles is:
//!
//! | cycles | who | how it ends |
//! | --- | --- | --- |
//! | 4 | signaling only | WebSocket dropped without `leave` (half with a close frame, half without) |
//! | 3 | signaling only, a Chromium-like offer | the PeerConnection never completes: offer (and maybe a candidate, maybe waiting for the answer), then the WebSocket is dropped |
//! | 1 | real peer | connected, then WebSocket and PeerConnection vanish without `leave` |
//! | 1 | real peer | connected, then its media dies while the WebSocket stays: the server reaps it after `peer_timeout` |
//! | 1 | real peer in a child process | connected, then the process is killed with SIGKILL |
//! | 3 | real webrtc-rs peer (ICE + DTLS, publishing audio and video) | waits until connected, then `leave` |
//! | 17 | signaling only | `leave`, `left`, WebSocket closed |
//!
//! Over 1,000 cycles: 340 abrupt (136 dropped sockets, 102 offers left hanging, 34 vanished peers,
//! 34 dead media connections, 34 killed processes), 99 real peers and 561 signaling-only clients
//! that leave properly; 201 real ICE + DTLS PeerConnections in all. `peer_timeout` is 2 s, so
//! abandoned connections are reaped quickly.
//!
//! Afterwards the server holds no rooms (`Sfu::rooms`, `/api/rooms`, the `/metrics` gauges), and
//! the process is back to its baseline (taken after a warm-up of every kind of cycle, once fds and
//! tasks have been still for 2 s): alive tokio tasks and open file descriptors (every server and
//! client PeerConnection holds UDP sockets) within [`TOLERANCE`] after a settling wait of at most
//! 30 s, and RSS growth under [`RSS_GROWTH_BOUND_KIB`].
//!
//! Measured on the 2-core development machine (debug build, dependencies at opt-level 2), six
//! runs: the 1,000 cycles took 13.2–14.7 s of wall time (the whole test about 16 s, 6 s of CPU);
//! baseline 2–3 alive tasks and 13–18 open fds, after settling 2–4 tasks and 13–18 fds (never
//! more than one fd over the baseline); RSS from 25–33 MB to 47–66 MB, a growth of 16–38 MiB.
//! That growth is the allocator's high-water mark, not a leak: 3,000 cycles grew RSS by the same
//! 35 MiB. The bound, 64 MiB, leaves about 1.7 times the worst run. A PeerConnection leaked per
//! cycle would show in the fds long before RSS.
//!
//! The first run of this test found a leak: an offer abandoned right after the server's answer
//! left about one UDP socket and one task behind in thirty (webrtc-ice adds a candidate gathered
//! after its agent closed to the closed agent); `Peer::close` in `roomcast-sfu` now lets the
//! gathering finish first, and [`offers_abandoned_while_the_server_gathers_candidates_release_their_sockets`]
//! keeps that case on its own.

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{stream, SinkExt, StreamExt};
use roomcast_sfu::{SfuConfig, SfuLimits};
use roomcast_signaling::{EdgeLimits, EdgeOptions};
use serde_json::{json, Value};
use support::client_peer::{ClientPeer, NetworkType};
use support::process::Resources;
use support::{TestServer, Ws};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

const CYCLES: usize = 1000;
const CONCURRENCY: usize = 12;
const ROOMS: usize = 8;
/// Extra alive tasks or open fds allowed after settling, for runtime housekeeping.
const TOLERANCE: usize = 4;
/// RSS may grow this much over the baseline (allocator caches, lazily grown tables).
const RSS_GROWTH_BOUND_KIB: u64 = 64 * 1024;
/// No cycle may take longer than this.
const CYCLE_LIMIT: Duration = Duration::from_secs(60);

/// The tests here read process-wide figures (fds, RSS), so they take turns.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The child-process mode of this test binary: see [`child_peer_process`].
const CHILD_ADDR: &str = "ROOMCAST_SOAK_CHILD_ADDR";
const CHILD_ROOM: &str = "ROOMCAST_SOAK_CHILD_ROOM";

const CHROMIUM_OFFER: &str = include_str!("support/fixtures/chromium_offer.sdp");
/// A trickled host candidate on loopback (the discard port: nothing answers).
const LOOPBACK_CANDIDATE: &str =
    "candidate:1467250027 1 udp 2122260223 127.0.0.1 9 typ host generation 0 ufrag Tq3V network-id 1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cycle {
    SignalingLeaves,
    PeerLeaves,
    SocketDropped,
    OfferThenVanish,
    PeerVanishes,
    MediaDies,
    ProcessKilled,
}

impl Cycle {
    fn of(n: usize) -> Self {
        match n % 30 {
            0..=3 => Cycle::SocketDropped,
            4..=6 => Cycle::OfferThenVanish,
            7 => Cycle::PeerVanishes,
            8 => Cycle::MediaDies,
            9 => Cycle::ProcessKilled,
            10..=12 => Cycle::PeerLeaves,
            _ => Cycle::SignalingLeaves,
        }
    }

    fn is_abrupt(self) -> bool {
        !matches!(self, Cycle::SignalingLeaves | Cycle::PeerLeaves)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_joins_and_leaves_a_third_abrupt_leave_no_rooms_tasks_sockets_or_memory_behind()
{
    let _alone = MEASURING.lock().await;
    let server = TestServer::start(SfuConfig {
        peer_timeout: Duration::from_secs(2),
        ..SfuConfig::default()
    })
    .await;
    let addr = server.addr;
    let abrupt = (30..30 + CYCLES)
        .filter(|&n| Cycle::of(n).is_abrupt())
        .count();
    assert!(abrupt >= CYCLES / 3, "a third of the cycles are abrupt");

    // Warm up every kind of cycle once, so what is created lazily on first use (the blocking
    // pool's threads, the child-process reaper's signal pipe) is in the baseline.
    run_cycles(addr, 0..30, Cycle::of).await;
    let baseline = settled(&server, None).await;
    eprintln!("soak baseline: {baseline:?}");

    let started = std::time::Instant::now();
    run_cycles(addr, 30..30 + CYCLES, Cycle::of).await;
    let ran = started.elapsed();

    let after = settled(&server, Some(baseline)).await;
    eprintln!(
        "soak after {CYCLES} cycles ({abrupt} abrupt) in {:.1} s: {after:?}, RSS growth {} KiB",
        ran.as_secs_f64(),
        after.rss_kib.saturating_sub(baseline.rss_kib)
    );
    assert!(
        after.tasks <= baseline.tasks + TOLERANCE,
        "alive tasks went from {} to {}",
        baseline.tasks,
        after.tasks
    );
    assert!(
        after.fds <= baseline.fds + TOLERANCE,
        "open fds went from {} to {}",
        baseline.fds,
        after.fds
    );
    assert!(
        after.rss_kib <= baseline.rss_kib + RSS_GROWTH_BOUND_KIB,
        "RSS grew from {} KiB to {} KiB",
        baseline.rss_kib,
        after.rss_kib
    );
}

/// The case the soak test first caught: a client that offers and vanishes while the server is
/// still gathering its ICE candidates. Each such offer used to leave a UDP socket and a task behind
/// about one time in thirty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_abandoned_while_the_server_gathers_candidates_release_their_sockets() {
    let _alone = MEASURING.lock().await;
    let server = TestServer::start(SfuConfig::default()).await;
    let offers = |_| Cycle::OfferThenVanish;
    run_cycles(server.addr, 0..CONCURRENCY, offers).await;
    let baseline = settled(&server, None).await;
    run_cycles(server.addr, 0..300, offers).await;
    let after = settled(&server, Some(baseline)).await;
    assert!(
        after.fds <= baseline.fds + TOLERANCE && after.tasks <= baseline.tasks + TOLERANCE,
        "300 abandoned offers: {baseline:?} became {after:?}"
    );
}

/// What the fd baseline relies on: a connected room really holds UDP sockets (the server's and
/// the clients'), and everyone leaving releases every one of them and zeroes the gauges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_that_empties_releases_its_udp_sockets_and_zeroes_the_gauges() {
    let _alone = MEASURING.lock().await;
    let server = TestServer::start(SfuConfig::default()).await;
    run_cycles(server.addr, 0..1, |_| Cycle::PeerLeaves).await;
    let baseline = settled(&server, None).await;
    let udp_baseline = udp_socket_count();

    let mut peers = Vec::new();
    for name in ["ada", "bob", "cy"] {
        let peer = ClientPeer::join(&server, "sockets", name).await;
        peer.wait_connected().await;
        peers.push(peer);
    }
    let udp_sockets = udp_socket_count();
    assert!(
        udp_sockets >= 6,
        "three connected peers and their server side hold at least six UDP sockets, saw {udp_sockets}"
    );
    let (_, metrics) = server.http_get("/metrics").await;
    assert!(metrics.contains("\nroomcast_rooms 1\n"), "{metrics}");
    assert!(metrics.contains("\nroomcast_participants 3\n"), "{metrics}");

    for peer in peers {
        peer.leave().await;
    }
    let after = settled(&server, Some(baseline)).await;
    assert!(
        after.fds <= baseline.fds + TOLERANCE,
        "open fds went from {} to {}",
        baseline.fds,
        after.fds
    );
    support::eventually("every UDP socket of the room to be closed", || async {
        udp_socket_count() <= udp_baseline
    })
    .await;
}

/// UDP sockets among this process's open fds.
fn udp_socket_count() -> usize {
    let inodes: std::collections::HashSet<String> = ["/proc/self/net/udp", "/proc/self/net/udp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| line.split_whitespace().nth(9).map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect();
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .filter(|inode| inodes.contains(inode))
        .count()
}

/// Found by the SDP fuzz target: a participant answers each signal on its bounded event queue,
/// and the session used to wait to hand over the next signal without taking those answers, so a
/// client sending some ten thousand refused signals left the two waiting for each other forever,
/// deaf even to the client hanging up. The client here writes and reads at once, like a browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_flooding_refused_signals_is_answered_to_the_end_and_can_leave() {
    const FLOOD: usize = 30_000;
    let _alone = MEASURING.lock().await;
    // Limits off: the deadlock lay beneath them, and a trusted client may be allowed this much.
    let unlimited = EdgeOptions {
        limits: EdgeLimits {
            messages_per_second: 1e9,
            message_burst: 1e9,
            max_strikes: u32::MAX,
            ..EdgeLimits::default()
        },
        ..EdgeOptions::default()
    };
    let limits = SfuLimits {
        max_candidates: usize::MAX,
        ..SfuLimits::default()
    };
    let server = TestServer::start_with(
        SfuConfig {
            limits,
            ..SfuConfig::default()
        },
        unlimited,
    )
    .await;
    let url = format!("ws://{}/ws", server.addr);
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let (mut outgoing, mut incoming) = socket.split();
    let reader = tokio::spawn(async move {
        let mut refusals = 0;
        loop {
            let frame = tokio::time::timeout(support::TIMEOUT, incoming.next()).await;
            let Ok(Some(Ok(Message::Text(text)))) = frame else {
                return (refusals, false);
            };
            let message: Value = serde_json::from_str(&text).expect("server JSON");
            match message["type"].as_str() {
                Some("left") => return (refusals, true),
                Some("error") => refusals += 1,
                _ => {}
            }
        }
    });
    let send = |text: String| Message::Text(text.into());
    outgoing
        .send(send(json!({"type": "join", "room": "flood"}).to_string()))
        .await
        .expect("send");
    // A candidate before any offer: refused with `wrong_state`, one error per frame.
    let refused = json!({"type": "candidate", "candidate": {"candidate": "x"}}).to_string();
    for _ in 0..FLOOD {
        outgoing.send(send(refused.clone())).await.expect("send");
    }
    outgoing
        .send(send(json!({"type": "leave"}).to_string()))
        .await
        .expect("send");
    let (refusals, left) = reader.await.expect("reader");
    assert!(left, "no `left` after {refusals} refusals of {FLOOD}");
    // `leave` may overtake the last refusals still queued in the participant.
    assert!(refusals >= FLOOD / 2, "{refusals} refusals of {FLOOD}");
    server.wait_until_empty().await;
}

/// Waits for the server to empty and the process to settle, checks that the admin API and the
/// metrics agree the server is empty, and returns what the process holds.
async fn settled(server: &TestServer, baseline: Option<Resources>) -> Resources {
    server.wait_until_empty().await;
    let (status, rooms) = server.http_get("/api/rooms").await;
    assert_eq!(status, 200, "{rooms}");
    assert_eq!(
        serde_json::from_str::<Value>(&rooms).expect("rooms JSON"),
        json!([])
    );
    let (status, metrics) = server.http_get("/metrics").await;
    assert_eq!(status, 200, "{metrics}");
    for gauge in [
        "roomcast_rooms",
        "roomcast_participants",
        "roomcast_published_tracks",
        "roomcast_forwarded_tracks",
    ] {
        assert!(
            metrics.contains(&format!("\n{gauge} 0\n")),
            "{gauge} is not back to 0:\n{metrics}"
        );
    }
    // Sockets being torn down, the metrics scrape's own connection, webrtc-rs's closing tasks.
    match baseline {
        None => Resources::quiescent(Duration::from_secs(30)).await,
        Some(baseline) => {
            Resources::settle_towards(baseline, TOLERANCE, Duration::from_secs(30)).await
        }
    }
}

/// Runs `cycles`, [`CONCURRENCY`] at a time, the kind of each chosen by `kind`.
async fn run_cycles(addr: SocketAddr, cycles: std::ops::Range<usize>, kind: fn(usize) -> Cycle) {
    let mut results = stream::iter(cycles)
        .map(|n| tokio::spawn(run_cycle(addr, n, kind(n))))
        .buffer_unordered(CONCURRENCY);
    while let Some(result) = results.next().await {
        if let Err(error) = result {
            std::panic::resume_unwind(error.into_panic());
        }
    }
}

async fn run_cycle(addr: SocketAddr, n: usize, kind: Cycle) {
    let room = format!("soak-{}", n % ROOMS);
    let name = format!("cycle {n}");
    let cycle = async {
        match kind {
            Cycle::SignalingLeaves => signaling_leaves(addr, &room, &name).await,
            Cycle::PeerLeaves => {
                let peer = ClientPeer::join_at(addr, &room, &name, NetworkType::Udp4).await;
                peer.wait_connected().await;
                peer.leave().await;
            }
            Cycle::SocketDropped => socket_dropped(addr, &room, &name, n.is_multiple_of(2)).await,
            Cycle::OfferThenVanish => offer_then_vanish(addr, &room, &name, n).await,
            Cycle::PeerVanishes => {
                let peer = ClientPeer::join_at(addr, &room, &name, NetworkType::Udp4).await;
                peer.wait_connected().await;
                peer.close().await;
            }
            Cycle::MediaDies => {
                let peer = ClientPeer::join_at(addr, &room, &name, NetworkType::Udp4).await;
                peer.wait_connected().await;
                let after = peer.kill_media().await.await;
                let after = after.expect("the server to remove a peer whose media died");
                assert!(after.iter().any(|m| m["type"] == "left"), "{after:?}");
            }
            Cycle::ProcessKilled => process_killed(addr, &room).await,
        }
    };
    tokio::time::timeout(CYCLE_LIMIT, cycle)
        .await
        .unwrap_or_else(|_| panic!("cycle {n} ({kind:?}) did not finish"));
}

async fn signaling_leaves(addr: SocketAddr, room: &str, name: &str) {
    let mut ws = Ws::connect(addr).await;
    ws.join(room, name).await;
    ws.send(json!({"type": "leave"})).await;
    ws.recv_type("left").await;
    ws.close().await;
}

async fn socket_dropped(addr: SocketAddr, room: &str, name: &str, with_close_frame: bool) {
    let mut ws = Ws::connect(addr).await;
    ws.join(room, name).await;
    if with_close_frame {
        ws.close().await;
    } else {
        drop(ws);
    }
}

/// Joins and offers like a browser, then vanishes before any media connection can complete.
async fn offer_then_vanish(addr: SocketAddr, room: &str, name: &str, n: usize) {
    let mut ws = Ws::connect(addr).await;
    ws.join(room, name).await;
    ws.send(json!({"type": "offer", "sdp": CHROMIUM_OFFER}))
        .await;
    match n % 3 {
        0 => {}
        1 => {
            let candidate =
                json!({"candidate": LOOPBACK_CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0});
            ws.send(json!({"type": "candidate", "candidate": candidate}))
                .await;
        }
        _ => {
            let answer = ws.recv_type("answer").await;
            assert!(answer["sdp"].as_str().is_some_and(|s| s.starts_with("v=0")));
        }
    }
    drop(ws);
}

/// A real peer in a child process (this test binary re-run in [`child_peer_process`] mode):
/// once it reports a connected PeerConnection, SIGKILL.
async fn process_killed(addr: SocketAddr, room: &str) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = tokio::process::Command::new(exe)
        .args([
            "--exact",
            "child_peer_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ADDR, addr.to_string())
        .env(CHILD_ROOM, room)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the child peer");
    let mut lines = BufReader::new(child.stdout.take().expect("child stdout")).lines();
    let connected = async {
        while let Some(line) = lines.next_line().await.expect("child stdout") {
            if line.contains("CONNECTED ") {
                return true;
            }
        }
        false
    };
    let connected = tokio::time::timeout(support::TIMEOUT, connected).await;
    child.kill().await.expect("SIGKILL the child peer");
    assert_eq!(
        connected.ok(),
        Some(true),
        "the child peer never reported a connected PeerConnection"
    );
}

/// Not a test of its own: the body of the child process that [`process_killed`] starts and kills.
/// Without its environment variables it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of the soak test, started by it"]
async fn child_peer_process() {
    let (Ok(addr), Ok(room)) = (std::env::var(CHILD_ADDR), std::env::var(CHILD_ROOM)) else {
        return;
    };
    let addr: SocketAddr = addr.parse().expect(CHILD_ADDR);
    let peer = ClientPeer::join_at(addr, &room, "doomed child", NetworkType::Udp4).await;
    peer.wait_connected().await;
    println!("CONNECTED {}", peer.id);
    // The parent kills this process now; should it not, leave after a bounded wait.
    tokio::time::sleep(Duration::from_secs(60)).await;
    peer.leave().await;
}
