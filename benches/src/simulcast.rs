//! The simulcast publisher: audio plus one video transceiver sending the three layers of
//! [`media::LAYERS`] as a browser does (one SSRC, sequence and timestamp space per layer, the MID
//! and RID header extensions on every packet, `a=rid:… send` and `a=simulcast:send q;h;f` in the
//! offer), with real VP8 payload descriptors and keyframe headers so the server learns each
//! layer's size, and a keyframe of a layer at its next frame whenever the server asks for one
//! (PLI or FIR on that layer's SSRC), besides the periodic one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::task::JoinHandle;
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::{TrackLocal, TrackLocalWriter};

use crate::clock::now_micros;
use crate::media::{self, LayerSpec, VideoProbe, LAYERS};
use crate::peer::{self, Shared};
use crate::window::{Kind, Sent};

/// The layer whose packets a simulcast publisher counts as sent: the one a subscriber with an
/// unconstrained downlink and no tile size receives.
pub const COUNTED_LAYER: usize = LAYERS.len() - 1;

/// Keyframe requests the server made per layer, not yet answered.
#[derive(Default)]
struct Requests([AtomicBool; LAYERS.len()]);

/// Adds audio and the three-layer video transceiver and starts sending. Only packets of
/// [`COUNTED_LAYER`] count as sent video.
pub(crate) async fn start_simulcast(
    pc: &RTCPeerConnection,
    shared: &Arc<Shared>,
) -> Result<(Vec<JoinHandle<()>>, Arc<Sent>)> {
    let audio = peer::local_track(MIME_TYPE_OPUS, media::AUDIO_CLOCK, 2, "audio");
    pc.add_track(Arc::clone(&audio) as Arc<dyn TrackLocal + Send + Sync>)
        .await?;
    let codec = RTCRtpCodecCapability {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: media::VIDEO_CLOCK,
        ..Default::default()
    };
    let layers: Vec<Arc<TrackLocalStaticRTP>> = LAYERS
        .iter()
        .map(|l| {
            Arc::new(TrackLocalStaticRTP::new_with_rid(
                codec.clone(),
                "video".to_owned(),
                l.rid.to_owned(),
                "bench".to_owned(),
            ))
        })
        .collect();
    // The first layer makes the transceiver; the others are encodings of the same sender, so
    // the offer lists their RIDs in this order, lowest first.
    let sender = pc
        .add_track(Arc::clone(&layers[0]) as Arc<dyn TrackLocal + Send + Sync>)
        .await?;
    for layer in &layers[1..] {
        sender
            .add_encoding(Arc::clone(layer) as Arc<dyn TrackLocal + Send + Sync>)
            .await?;
    }
    let requests = Arc::new(Requests::default());
    let counts = Arc::new(Sent::default());
    let mut tasks = vec![
        tokio::spawn(peer::send_audio(
            audio,
            Arc::clone(shared),
            Arc::clone(&counts),
        )),
        tokio::spawn(send_layers(
            layers,
            Arc::clone(shared),
            Arc::clone(&counts),
            Arc::clone(&requests),
        )),
    ];
    for (i, spec) in LAYERS.iter().enumerate() {
        tokio::spawn(read_requests(
            Arc::clone(&sender),
            spec.rid,
            i,
            Arc::clone(&requests),
        ));
    }
    tasks.shrink_to_fit();
    Ok((tasks, counts))
}

/// Reads one layer's RTCP until the sender stops, noting keyframe requests.
async fn read_requests(
    sender: Arc<RTCRtpSender>,
    rid: &'static str,
    layer: usize,
    requests: Arc<Requests>,
) {
    while let Ok((packets, _)) = sender.read_rtcp_simulcast(rid).await {
        let asks = packets.iter().any(|p| {
            let any = p.as_any();
            any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
        });
        if asks {
            requests.0[layer].store(true, Ordering::Relaxed);
        }
    }
}

/// Per-layer sending state: each layer numbers its packets, frames and picture ids on its own.
struct LayerState {
    spec: LayerSpec,
    track: Arc<TrackLocalStaticRTP>,
    seq: u16,
    counter: u32,
    timestamp_base: u32,
    picture_id: u16,
}

/// Sends every layer's frame at each 1/30 s tick, lowest layer first, as a simulcast encoder
/// does.
async fn send_layers(
    tracks: Vec<Arc<TrackLocalStaticRTP>>,
    shared: Arc<Shared>,
    sent: Arc<Sent>,
    requests: Arc<Requests>,
) {
    let mut layers: Vec<LayerState> = tracks
        .into_iter()
        .zip(LAYERS)
        .enumerate()
        .map(|(i, (track, spec))| LayerState {
            spec,
            track,
            // Distinct starting points, as independent encoders would have.
            seq: 1_000 + 7_000 * i as u16,
            counter: 0,
            timestamp_base: 90_000 * 7 * i as u32,
            picture_id: 100 * i as u16,
        })
        .collect();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / media::VIDEO_FPS);
    let ticks = media::VIDEO_CLOCK / media::VIDEO_FPS;
    let max = peer::MAX_SEND.as_secs() as u32 * media::VIDEO_FPS;
    for frame in 0..max {
        tick.tick().await;
        for (index, layer) in layers.iter_mut().enumerate() {
            let requested = requests.0[index].swap(false, Ordering::Relaxed);
            let periodic = frame.is_multiple_of(media::KEYFRAME_EVERY);
            let keyframe = periodic || requested;
            let mut flags = 0;
            if keyframe {
                flags |= VideoProbe::KEYFRAME;
            }
            if requested && !periodic {
                flags |= VideoProbe::REQUESTED;
            }
            let bytes = media::frame_bytes(layer.spec.bitrate, keyframe);
            let parts = media::split_frame(bytes);
            let count = parts.len().min(usize::from(u8::MAX)) as u8;
            let last = parts.len() - 1;
            for (i, len) in parts.into_iter().enumerate() {
                let stamp = now_micros();
                let probe = VideoProbe {
                    counter: layer.counter,
                    sent_micros: stamp,
                    layer: index as u8,
                    flags,
                    frame,
                    index: i.min(usize::from(u8::MAX)) as u8,
                    packets: count,
                };
                let payload = media::simulcast_payload(probe, layer.picture_id, &layer.spec, len);
                let packet = peer::rtp(
                    layer.seq,
                    layer.timestamp_base.wrapping_add(frame.wrapping_mul(ticks)),
                    i == last,
                    payload,
                );
                layer.seq = layer.seq.wrapping_add(1);
                layer.counter = layer.counter.wrapping_add(1);
                let written = layer.track.write_rtp(&packet).await.is_ok();
                if written && index == COUNTED_LAYER && shared.window.contains(stamp) {
                    sent.count(Kind::Video, probe.counter);
                }
                match shared.pacing_bytes_per_sec {
                    Some(rate) if i != last => {
                        tokio::time::sleep(Duration::from_secs_f64(len as f64 / rate)).await
                    }
                    _ => tokio::task::yield_now().await,
                }
            }
            layer.picture_id = (layer.picture_id + 1) & 0x7fff;
        }
    }
}
