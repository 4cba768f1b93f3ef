//! Microbenchmarks of roomcast's per-packet forwarding work, piece by piece:
//! - `forward/N`: the queue fan-out that taps (the recorder) get (`roomcast_sfu::FanOutBench`):
//!   reading the VP8 descriptor once, one `Arc` per packet, and for each of N taps a check of the
//!   layers it wants and a `try_send` to its queue (subscribers' packets no longer take a queue:
//!   the fan-out writes them itself, see `docs/benchmarks.md`);
//! - `forwarder`: one subscriber's forwarder deciding on a packet and renumbering it;
//! - `rewrite_marshal`: what a subscriber's `TrackLocalStaticRTP::write_rtp` does before its
//!   interceptors and SRTP: clone the packet, rewrite SSRC and payload type, serialise it;
//! - `srtp_protect`: SRTP-protecting a 1,200-byte packet with the negotiated profile
//!   (AEAD_AES_128_GCM, webrtc-srtp 0.17).
//!
//! Run with `cargo bench -p roomcast-bench --bench forwarding`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
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
            let mut fan_out = roomcast_sfu::FanOutBench::new(n, 256);
            let packet = vp8_packet(1, false);
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let chunk = CHUNK.min(iters - done);
                    let start = Instant::now();
                    for _ in 0..chunk {
                        std::hint::black_box(fan_out.forward(packet.clone()));
                    }
                    spent += start.elapsed();
                    // Draining is the subscriber tasks' work, not the fan-out's: not timed.
                    fan_out.drain();
                    done += chunk;
                }
                spent
            });
        });
    }
    group.finish();
}

/// A subscriber's forwarder deciding on and renumbering a packet of the layer it forwards.
fn forwarder(c: &mut Criterion) {
    let mut forwarder = roomcast_sfu::ForwarderBench::vp8();
    let now = Instant::now();
    std::hint::black_box(forwarder.forward(now, &vp8_packet(0, true)));
    let mut packet = vp8_packet(1, false);
    c.bench_function("forwarder/vp8/1200", |b| {
        b.iter(|| {
            packet.header.sequence_number = packet.header.sequence_number.wrapping_add(1);
            std::hint::black_box(forwarder.forward(now, &packet).is_some())
        })
    });
}

/// A 1,200-byte VP8 packet with a 15-bit picture id, as Chromium sends them.
fn vp8_packet(picture_id: u16, keyframe: bool) -> Packet {
    let mut packet = video_packet();
    let mut payload = vec![0xab; 1_200];
    payload[..5].copy_from_slice(&[
        0x90,
        0x80,
        0x80 | (picture_id >> 8) as u8,
        picture_id as u8,
        u8::from(!keyframe),
    ]);
    packet.payload = Bytes::from(payload);
    packet
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

criterion_group!(benches, forward, forwarder, rewrite_marshal, srtp_protect);
criterion_main!(benches);
