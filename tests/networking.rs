//! Media networking options of the SFU: one UDP port for every connection (UDP mux), media over
//! IPv6, and the address announced behind NAT 1:1.

mod support;

use roomcast_sfu::SfuConfig;
use support::client_peer::{ClientPeer, NetworkType};
use support::{eventually, free_udp_port, TestServer};

/// The port of an ICE candidate line: `candidate:F 1 udp PRIO ADDR PORT typ ...`.
fn candidate_port(candidate: &str) -> u16 {
    candidate
        .split_whitespace()
        .nth(5)
        .unwrap()
        .parse()
        .unwrap()
}

async fn receives_media(receiver: &ClientPeer, publisher: &ClientPeer) {
    eventually("audio and video from the publisher", || async {
        let got = receiver.received_from(&publisher.id);
        got.audio >= 10 && got.video >= 10
    })
    .await;
}

/// (address, port) of every candidate the server trickled; there is at least one.
fn server_candidates(peer: &ClientPeer) -> Vec<(String, u16)> {
    let candidates: Vec<_> = peer
        .server_candidates()
        .iter()
        .map(|c| {
            let address = c.split_whitespace().nth(4).unwrap().to_owned();
            (address, candidate_port(c))
        })
        .collect();
    assert!(!candidates.is_empty(), "the server sent no candidates");
    candidates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_udp_mux_every_participant_uses_the_one_server_port() {
    let port = free_udp_port();
    let server = TestServer::start(SfuConfig {
        udp_mux_port: Some(port),
        ..SfuConfig::default()
    })
    .await;
    let peers = [
        ClientPeer::join(&server, "muxed", "A").await,
        ClientPeer::join(&server, "muxed", "B").await,
        ClientPeer::join(&server, "muxed", "C").await,
    ];
    for receiver in &peers {
        for publisher in peers.iter().filter(|p| p.id != receiver.id) {
            receives_media(receiver, publisher).await;
        }
        for (address, candidate_port) in server_candidates(receiver) {
            assert_eq!(candidate_port, port);
            assert!(
                address.parse::<std::net::Ipv4Addr>().is_ok(),
                "IPv4 only: {address}"
            );
        }
    }
    for peer in peers {
        peer.close().await;
    }
    server.wait_until_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_exchange_media_over_ipv6() {
    let server = TestServer::start(SfuConfig {
        media_ips: vec![std::net::Ipv6Addr::LOCALHOST.into()],
        ..SfuConfig::default()
    })
    .await;
    let a = ClientPeer::join_over(&server, "six", "A", NetworkType::Udp6).await;
    let b = ClientPeer::join_over(&server, "six", "B", NetworkType::Udp6).await;
    for (receiver, publisher) in [(&a, &b), (&b, &a)] {
        receives_media(receiver, publisher).await;
        for (address, _) in server_candidates(receiver) {
            assert_eq!(address, "::1");
        }
    }
    a.close().await;
    b.close().await;
    server.wait_until_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nat_the_public_address_is_announced_instead_of_the_local_one() {
    // 127.0.0.2 stands in for the public address: it is loopback, so nothing leaves the machine.
    let server = TestServer::start(SfuConfig {
        public_ip: Some("127.0.0.2".parse().unwrap()),
        ..SfuConfig::default()
    })
    .await;
    let peer = ClientPeer::join(&server, "natted", "A").await;
    eventually("the server's candidates", || async {
        !peer.server_candidates().is_empty()
    })
    .await;
    for (address, _) in server_candidates(&peer) {
        assert_eq!(address, "127.0.0.2");
    }
    peer.close().await;
    server.wait_until_empty().await;
}

#[test]
fn candidate_ports_are_read_from_the_sixth_field() {
    assert_eq!(
        candidate_port("candidate:1 1 udp 2130706431 127.0.0.1 50123 typ host"),
        50123
    );
}
