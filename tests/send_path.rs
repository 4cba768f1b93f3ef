//! The send path roomcast owns (SRTP, transport-wide numbers, retransmissions and sender reports
//! done by the server itself, not by webrtc-rs's writers), in both of its ways out: straight onto
//! the shared socket under the UDP mux, and through webrtc-rs's ICE connection otherwise.

mod support;

use roomcast_sfu::SfuConfig;
use support::client_peer::ClientPeer;
use support::{eventually, free_udp_port, TestServer};

async fn media_flows_both_ways_with_round_trip_times(config: SfuConfig) {
    let server = TestServer::start(config).await;
    let ada = ClientPeer::join(&server, "sent", "Ada").await;
    let bob = ClientPeer::join(&server, "sent", "Bob").await;
    eventually("each to receive the other's audio and video", || async {
        let (a, b) = (ada.received_from(&bob.id), bob.received_from(&ada.id));
        a.audio > 20 && a.video > 20 && b.audio > 20 && b.video > 20
    })
    .await;
    // A round trip is measured from the subscriber's reports on the server's sender reports:
    // each forwarded track has one only if its sender reports arrive and are read right.
    eventually("a round-trip time on every forwarded track", || async {
        server.sfu.room("sent").is_some_and(|room| {
            room.participants.iter().all(|p| {
                p.forwarded.len() == 2
                    && p.forwarded
                        .iter()
                        .all(|t| t.rtt_ms.is_some_and(|rtt| rtt < 1_000.0))
            })
        })
    })
    .await;
    // A lost packet comes again, once per NACK.
    let seq = bob.nack_video_of(&ada.id).await;
    eventually("the NACKed packet to arrive again", || async {
        bob.times_received(&ada.id, seq) >= 2
    })
    .await;
    ada.close().await;
    bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_udp_mux_packets_go_straight_to_the_socket() {
    media_flows_both_ways_with_round_trip_times(SfuConfig {
        udp_mux_port: Some(free_udp_port()),
        ..SfuConfig::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_socket_per_connection_packets_go_through_ice() {
    media_flows_both_ways_with_round_trip_times(SfuConfig::default()).await;
}
