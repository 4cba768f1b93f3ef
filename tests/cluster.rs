//! Several roomcast binaries as one cluster through a real Redis: the node registry and
//! `/api/nodes` (room ownership and signaling relay are in the cluster crate's tests and to come).

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::binary::Roomcast;
use support::redis_server::RedisServer;

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
