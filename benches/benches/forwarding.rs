//! Microbenchmarks of roomcast's per-packet forwarding work, piece by piece:
//! - `forward/N`: the publication's fan-out step itself (`roomcast_sfu::forward`): one `Arc` per
//!   packet and a `try_send` to each of N subscriber queues;
//! - `rewrite_marshal`: what a subscriber's `TrackLocalStaticRTP::write_rtp` does before its
//!   interceptors and SRTP: clone the packet, rewrite SSRC and payload type, serialise it;
//! - `srtp_protect`: SRTP-protecting a 1,200-byte packet with the negotiated profile
//!   (AEAD_AES_128_GCM, webrtc-srtp 0.17).
//!
//! Run with `cargo bench -p roomcast-bench --bench forwarding`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tokio::sync::mpsc;
use webrtc::rtp::header::Header;
use webrtc::rtp::packet::Packet;
use webrtc::srtp::context::Context;
use webrtc::srtp::protection_profile::ProtectionProfile;
use webrtc::util::Marshal;

fn video_packet() -> Packet {
    Packet {
        header: Header {
            version: 2,
            payload_type: 96,
            sequence_number: 1,
            timestamp: 3000,
            ssrc: 42,
            marker: true,
            ..Default::default()
        },
        payload: Bytes::from(vec![0xab; 1_200]),
    }
}

/// Packets forwarded between drains: below the SFU's 256-packet queue, so no queue is full.
const CHUNK: u64 = 200;

fn forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward");
    for n in [1usize, 10, 100, 1000] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let (mut subs, mut rxs): (Vec<_>, Vec<_>) = (0..n)
                .map(|i| {
                    let (tx, rx) = mpsc::channel(256);
                    ((i as u64, tx), rx)
                })
                .unzip();
            let packet = video_packet();
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let chunk = CHUNK.min(iters - done);
                    let start = Instant::now();
                    for _ in 0..chunk {
                        let dropped = roomcast_sfu::forward(Arc::new(packet.clone()), &mut subs);
                        std::hint::black_box(dropped);
                    }
                    spent += start.elapsed();
                    // Draining is the subscriber tasks' work, not the fan-out's: not timed.
                    for rx in &mut rxs {
                        while rx.try_recv().is_ok() {}
                    }
                    done += chunk;
                }
                spent
            });
        });
    }
    group.finish();
}

fn rewrite_marshal(c: &mut Criterion) {
    let packet = video_packet();
    c.bench_function("rewrite_marshal/1200", |b| {
        b.iter(|| {
            let mut p = packet.clone();
            p.header.ssrc = 0x1234_5678;
            p.header.payload_type = 97;
            std::hint::black_box(p.marshal().map(|b| b.len()).unwrap_or(0))
        })
    });
}

fn srtp_protect(c: &mut Criterion) {
    let profile = ProtectionProfile::AeadAes128Gcm;
    let key = vec![7u8; profile.key_len()];
    let salt = vec![9u8; profile.salt_len()];
    let Ok(mut ctx) = Context::new(&key, &salt, profile, None, None) else {
        panic!("an SRTP context with a valid key and salt");
    };
    let mut packet = video_packet();
    c.bench_function("srtp_protect/aead_aes_128_gcm/1200", |b| {
        b.iter(|| {
            packet.header.sequence_number = packet.header.sequence_number.wrapping_add(1);
            let plain = packet.marshal().unwrap_or_default();
            std::hint::black_box(ctx.encrypt_rtp(&plain).map(|b| b.len()).unwrap_or(0))
        })
    });
}

criterion_group!(benches, forward, rewrite_marshal, srtp_protect);
criterion_main!(benches);
