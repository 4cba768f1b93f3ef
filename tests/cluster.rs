//! Several roomcast binaries as one cluster through a real Redis: the node registry and
//! `/api/nodes`, and rooms that live on one node (joining one through another node, which needs
//! the signaling relay, is refused with `unavailable` until that relay exists).

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::binary::Roomcast;
use support::redis_server::RedisServer;
use support::Ws;

/// `/api/nodes` of `node` as JSON.
fn nodes(node: &Roomcast) -> Vec<Value> {
    let response = node.get("/api/nodes");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {response}"))
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_node_lists_every_serving_node_and_a_stopped_one_leaves_the_list() {
    let redis = RedisServer::start();
    let a = Roomcast::start(&["--redis", &redis.url]);
    let mut b = Roomcast::start(&["--redis", &redis.url]);
    let urls = |list: &[Value]| {
        let mut urls: Vec<String> = list
            .iter()
            .map(|n| n["url"].as_str().unwrap().to_owned())
            .collect();
        urls.sort();
        urls
    };
    let mut expected = vec![
        format!("http://127.0.0.1:{}", a.addr.port()),
        format!("http://127.0.0.1:{}", b.addr.port()),
    ];
    expected.sort();
    wait_for("both nodes on both nodes' lists", || {
        urls(&nodes(&a)) == expected && urls(&nodes(&b)) == expected
    });
    for node in nodes(&a) {
        assert_eq!(node["state"], "serving");
        assert_eq!(node["rooms"], 0);
        assert!(node["id"].as_str().is_some_and(|id| !id.is_empty()));
    }

    b.terminate();
    assert!(b.wait(Duration::from_secs(10)).success());
    assert_eq!(
        urls(&nodes(&a)),
        vec![format!("http://127.0.0.1:{}", a.addr.port())],
        "a node that shuts down takes itself off the list at once"
    );
}

#[test]
fn a_node_killed_outright_lapses_from_the_list() {
    let redis = RedisServer::start();
    let a = Roomcast::start(&["--redis", &redis.url]);
    let b = Roomcast::start(&["--redis", &redis.url]);
    wait_for("both nodes listed", || nodes(&a).len() == 2);
    drop(b); // SIGKILL
    let killed = Instant::now();
    wait_for("the killed node to lapse", || nodes(&a).len() == 1);
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "{:?}",
        killed.elapsed()
    );
}

#[test]
fn without_redis_a_node_lists_itself_alone() {
    let node = Roomcast::start(&[]);
    let list = nodes(&node);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], "standalone");
    assert_eq!(list[0]["state"], "serving");
}

#[test]
fn a_node_refuses_to_start_when_its_redis_cannot_be_reached() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let status = Roomcast::command()
        .args([
            "--http",
            "127.0.0.1:0",
            "--https",
            "off",
            "--redis",
            &format!("redis://127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
}

/// What a fresh connection to `node` is told when it asks to join `room`.
async fn try_join(node: &Roomcast, room: &str) -> (Value, Ws) {
    let mut ws = Ws::connect(node.addr).await;
    ws.send(json!({"type": "join", "room": room, "name": "Ada"}))
        .await;
    let reply = ws.recv_skipping_candidates().await;
    (reply, ws)
}

async fn eventually_joins(node: &Roomcast, room: &str, what: &str) -> Ws {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (reply, ws) = try_join(node, room).await;
        if reply["type"] == "joined" {
            return ws;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {reply}"
        );
        ws.close().await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_lives_on_the_node_that_opened_it_until_it_closes() {
    let redis = RedisServer::start();
    let a = Roomcast::start(&["--redis", &redis.url]);
    let b = Roomcast::start(&["--redis", &redis.url]);
    let (joined, mut ada) = try_join(&a, "standup").await;
    assert_eq!(joined["type"], "joined", "{joined}");
    let (refused, _) = try_join(&b, "standup").await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "unavailable", "{refused}");
    let (other, _) = try_join(&b, "retro").await;
    assert_eq!(
        other["type"], "joined",
        "another room opens on the other node: {other}"
    );

    // Once the room closes its claim is released (within a heartbeat or two), and the room may
    // open anywhere.
    ada.send(json!({"type": "leave"})).await;
    ada.recv_type("left").await;
    let closed = Instant::now();
    eventually_joins(&b, "standup", "the room to open on the other node").await;
    assert!(
        closed.elapsed() < Duration::from_secs(8),
        "{:?}",
        closed.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_joins_are_unavailable_and_come_back_with_it() {
    let redis = RedisServer::start();
    let port = redis.port;
    let node = Roomcast::start(&["--redis", &redis.url]);
    let (joined, _running) = try_join(&node, "before").await;
    assert_eq!(joined["type"], "joined");

    redis.stop();
    let (refused, _) = try_join(&node, "during").await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "unavailable", "{refused}");

    tokio::time::sleep(Duration::from_secs(7)).await; // past the lease of the running room's claim
    let redis = RedisServer::start_on(port);
    eventually_joins(&node, "after", "joins to work again once Redis is back").await;

    // The room that kept running here is claimed again: another node cannot open it too.
    wait_for("the running room to be claimed again", || {
        let owner = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "GET", "roomcast:room:before"])
            .output()
            .unwrap();
        !String::from_utf8_lossy(&owner.stdout).trim().is_empty()
    });
    let other = Roomcast::start(&["--redis", &redis.url]);
    let (refused, _) = try_join(&other, "before").await;
    assert_eq!(refused["code"], "unavailable", "{refused}");
}

/// `GET path` on `node` as JSON.
fn get_json(node: &Roomcast, path: &str) -> Value {
    let response = node.get(path);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {response}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_lists_every_room_once_with_its_node_and_kicks_and_closes_there() {
    let redis = RedisServer::start();
    let a = Roomcast::start(&["--redis", &redis.url]);
    let b = Roomcast::start(&["--redis", &redis.url]);
    wait_for("both nodes listed", || nodes(&a).len() == 2);
    let id_of = |node: &Roomcast| {
        let url = format!("http://127.0.0.1:{}", node.addr.port());
        nodes(node)
            .into_iter()
            .find(|n| n["url"] == url.as_str())
            .unwrap()["id"]
            .clone()
    };
    let (ida, idb) = (id_of(&a), id_of(&b));
    let (alpha_joined, mut alpha) = try_join(&a, "alpha").await;
    let (_, mut beta) = try_join(&b, "beta").await;
    for node in [&a, &b] {
        let rooms = get_json(node, "/api/rooms");
        let listed: Vec<(Value, Value, Value)> = rooms
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].clone(),
                    r["node"].clone(),
                    r["participant_count"].clone(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            vec![
                (json!("alpha"), ida.clone(), json!(1)),
                (json!("beta"), idb.clone(), json!(1))
            ]
        );
    }
    let local = get_json(&a, "/api/rooms?scope=local");
    assert_eq!(local.as_array().unwrap().len(), 1, "{local}");

    // Kick and close go to the node the room lives on, whichever node the operator asks.
    let delete = |node: &Roomcast, path: &str| {
        node.request(&format!(
            "DELETE {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            node.addr
        ))
    };
    let closed = delete(&a, "/api/rooms/beta");
    assert!(closed.starts_with("HTTP/1.1 204"), "{closed}");
    assert_eq!(beta.recv_type("kicked").await["reason"], "room_closed");
    let ada = alpha_joined["id"].as_str().unwrap();
    let kicked = delete(&b, &format!("/api/rooms/alpha/participants/{ada}"));
    assert!(kicked.starts_with("HTTP/1.1 204"), "{kicked}");
    assert_eq!(alpha.recv_type("kicked").await["reason"], "kicked");
    let missing = delete(&b, "/api/rooms/nowhere");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}
