//! The measurement window, and what each side counts in it.
//!
//! A window is a span of *send* times. A publisher counts the packets it stamps inside it; a
//! subscriber counts the packets it receives whose stamp is inside it, so packets in flight at
//! either edge are neither lost nor counted twice, and a track that delivers nothing shows as
//! 100 % loss. Receivers are collected a short grace period after the window closes.
//!
//! A sampling subscriber ([`crate::sampling`]) reads only some probes: its window is the run of
//! sequence numbers the publisher's counters in the window map to, counted at its socket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::histogram::Histogram;
use crate::layers::VideoLog;
use crate::media::{Probe, VideoProbe};
use crate::sampling::{Arrivals, CounterMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Audio,
    Video,
}

/// The span of send times being measured; closed (empty) until opened.
pub struct Window {
    start: AtomicU64,
    end: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            start: AtomicU64::new(u64::MAX),
            end: AtomicU64::new(u64::MAX),
        }
    }
}

impl Window {
    pub fn open(&self, at_micros: u64) {
        self.end.store(u64::MAX, Ordering::Relaxed);
        self.start.store(at_micros, Ordering::Relaxed);
    }

    pub fn close(&self, at_micros: u64) {
        self.end.store(at_micros, Ordering::Relaxed);
    }

    /// Empties the window: nothing is inside it until it is opened again. A scenario that
    /// measures several windows on the same participants clears it before resetting the
    /// counts ([`Sent::reset`], [`Reception::reset_window`]), so a late packet of the previous
    /// window is counted in neither.
    pub fn clear(&self) {
        self.start.store(u64::MAX, Ordering::Relaxed);
        self.end.store(u64::MAX, Ordering::Relaxed);
    }

    pub fn contains(&self, sent_micros: u64) -> bool {
        sent_micros >= self.start.load(Ordering::Relaxed)
            && sent_micros < self.end.load(Ordering::Relaxed)
    }
}

/// Packets one publisher stamped inside the window, per kind, and the probe counter of the first.
pub struct Sent {
    audio: AtomicU64,
    video: AtomicU64,
    /// `u64::MAX` until the first packet is counted.
    first_audio: AtomicU64,
    first_video: AtomicU64,
}

impl Default for Sent {
    fn default() -> Self {
        Self {
            audio: AtomicU64::new(0),
            video: AtomicU64::new(0),
            first_audio: AtomicU64::new(u64::MAX),
            first_video: AtomicU64::new(u64::MAX),
        }
    }
}

impl Sent {
    /// Counts a packet stamped inside the window; `counter` is its probe's.
    pub fn count(&self, kind: Kind, counter: u32) {
        let (n, first) = self.of(kind);
        // One sender per kind: a load and a store cannot race with another first packet.
        if first.load(Ordering::Relaxed) == u64::MAX {
            first.store(u64::from(counter), Ordering::Relaxed);
        }
        n.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, kind: Kind) -> u64 {
        self.of(kind).0.load(Ordering::Relaxed)
    }

    /// Forgets the previous window's counts, for the next one; only while the window is
    /// cleared ([`Window::clear`]), so no sender counts meanwhile.
    pub fn reset(&self) {
        for kind in [Kind::Audio, Kind::Video] {
            let (n, first) = self.of(kind);
            first.store(u64::MAX, Ordering::Relaxed);
            n.store(0, Ordering::Relaxed);
        }
    }

    /// The probe counter of the first packet counted.
    pub fn first(&self, kind: Kind) -> Option<u64> {
        let first = self.of(kind).1.load(Ordering::Relaxed);
        (first != u64::MAX).then_some(first)
    }

    fn of(&self, kind: Kind) -> (&AtomicU64, &AtomicU64) {
        match kind {
            Kind::Audio => (&self.audio, &self.first_audio),
            Kind::Video => (&self.video, &self.first_video),
        }
    }
}

/// Where a sampling reception's packets are counted: its connection's socket, under its SSRC.
pub struct SampledTrack {
    pub arrivals: Arc<Arrivals>,
    pub ssrc: u32,
}

/// What one subscriber received on one track.
pub struct Reception {
    /// The publishing participant's id (the forwarded stream's id).
    pub publisher: String,
    pub kind: Kind,
    /// The forwarded track's id (the subscriber's `MediaStreamTrack.id`).
    pub track_id: String,
    inner: Mutex<Counts>,
    /// Set when only a sample of the packets is decrypted and recorded here.
    sampled: Option<SampledTrack>,
}

#[derive(Default)]
struct Counts {
    /// Packets recorded (the decrypted ones, when sampling).
    total: u64,
    in_window: u64,
    latency: Histogram,
    /// Simulcast video only.
    video: VideoLog,
    /// Sampling only: where probe counters fall among sequence numbers.
    counters: CounterMap,
}

/// A reception's figures for the window.
#[derive(Clone, Debug)]
pub struct ReceptionSummary {
    pub total: u64,
    pub in_window: u64,
    pub latency: Histogram,
}

impl Reception {
    pub fn new(publisher: String, kind: Kind) -> Self {
        Self::for_track(publisher, kind, String::new())
    }

    pub fn for_track(publisher: String, kind: Kind, track_id: String) -> Self {
        Self {
            publisher,
            kind,
            track_id,
            inner: Mutex::new(Counts::default()),
            sampled: None,
        }
    }

    /// A reception that records only the sampled packets; `track` counts all of them.
    pub fn sampled(publisher: String, kind: Kind, track_id: String, track: SampledTrack) -> Self {
        Self {
            sampled: Some(track),
            ..Self::for_track(publisher, kind, track_id)
        }
    }

    pub fn is_sampled(&self) -> bool {
        self.sampled.is_some()
    }

    /// Ties a recorded packet's probe counter to its RTP sequence number (sampling only).
    pub fn locate(&self, counter: u32, seq: u16) {
        let Some(track) = &self.sampled else { return };
        let Some(ext) = track.arrivals.extend(track.ssrc, seq) else {
            return;
        };
        if let Ok(mut c) = self.inner.lock() {
            c.counters.learn(counter, ext);
        }
    }

    /// Packets of this track received of those `sent` stamped in the window.
    ///
    /// Unsampled: the packets recorded with a stamp in the window. Sampled: the publisher's
    /// first counter in the window and the one after its last, placed among the sequence
    /// numbers by the decrypted packets, bound a run of numbers; what the socket counted in that
    /// run (never more than were sent) — every packet, not the sample scaled up.
    pub fn delivered(&self, sent: Option<&Sent>) -> u64 {
        let Some(track) = &self.sampled else {
            return self.summary().in_window;
        };
        let Some(sent) = sent else { return 0 };
        let (Some(first), n) = (sent.first(self.kind), sent.get(self.kind)) else {
            return 0;
        };
        let bounds = self
            .inner
            .lock()
            .ok()
            .and_then(|c| Some((c.counters.seq_of(first)?, c.counters.seq_of(first + n)?)));
        let Some((from, to)) = bounds else { return 0 };
        track
            .arrivals
            .with_log(track.ssrc, |log| log.received_between(from, to))
            .unwrap_or(0)
            .min(n)
    }

    /// Forgets the previous window's packets and latencies, for the next window (see
    /// [`Window::clear`]); what the track received in all (its total, the sampling counts and
    /// the map from probe counters to sequence numbers, the simulcast log) stays.
    pub fn reset_window(&self) {
        if let Ok(mut c) = self.inner.lock() {
            c.in_window = 0;
            c.latency = Histogram::default();
        }
    }

    /// Records one simulcast video packet: as [`Reception::record`], plus its layer and frame.
    pub fn record_video(
        &self,
        probe: VideoProbe,
        size: Option<(u16, u16)>,
        now: u64,
        window: &Window,
    ) {
        let Ok(mut c) = self.inner.lock() else { return };
        c.total += 1;
        if window.contains(probe.sent_micros) {
            c.in_window += 1;
            c.latency.record(now.saturating_sub(probe.sent_micros));
        }
        c.video.record(probe, size, now);
    }

    /// A copy of the simulcast video log so far.
    pub fn video(&self) -> VideoLog {
        self.inner
            .lock()
            .map(|c| c.video.clone())
            .unwrap_or_default()
    }

    /// Runs `f` on the simulcast video log without copying it.
    pub fn with_video<T>(&self, f: impl FnOnce(&VideoLog) -> T) -> Option<T> {
        self.inner.lock().ok().map(|c| f(&c.video))
    }

    /// Records one received packet; `now` is [`crate::clock::now_micros`] at reception.
    pub fn record(&self, probe: Probe, now: u64, window: &Window) {
        // One uncontended lock per packet: only this track's reader and the collector take it.
        let Ok(mut c) = self.inner.lock() else { return };
        c.total += 1;
        if window.contains(probe.sent_micros) {
            c.in_window += 1;
            c.latency.record(now.saturating_sub(probe.sent_micros));
        }
    }

    /// Sampling only: packets counted at the socket over the whole reception, and how many are
    /// missing between its first and highest sequence number.
    pub fn socket_counts(&self) -> Option<(u64, u64)> {
        let track = self.sampled.as_ref()?;
        track
            .arrivals
            .with_log(track.ssrc, |log| (log.received(), log.lost()))
    }

    /// Packets received so far (every one, when sampling).
    pub fn total(&self) -> u64 {
        if let Some(track) = &self.sampled {
            return track.arrivals.received(track.ssrc);
        }
        self.inner.lock().map(|c| c.total).unwrap_or(0)
    }

    /// The figures so far; when sampling, `total` counts every packet and the rest only the
    /// decrypted ones.
    pub fn summary(&self) -> ReceptionSummary {
        let sampled_total = self.sampled.as_ref().map(|_| self.total());
        match self.inner.lock() {
            Ok(c) => ReceptionSummary {
                total: sampled_total.unwrap_or(c.total),
                in_window: c.in_window,
                latency: c.latency.clone(),
            },
            Err(_) => ReceptionSummary {
                total: 0,
                in_window: 0,
                latency: Histogram::default(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_packets_sent_inside_the_window_count() {
        let w = Window::default();
        let r = Reception::new("p".into(), Kind::Video);
        let probe = |t| Probe {
            counter: 0,
            sent_micros: t,
        };
        r.record(probe(5), 10, &w);
        w.open(100);
        r.record(probe(99), 120, &w);
        r.record(probe(100), 130, &w);
        w.close(200);
        r.record(probe(199), 260, &w);
        r.record(probe(200), 260, &w);
        let s = r.summary();
        assert_eq!(s.total, 5);
        assert_eq!(s.in_window, 2);
        assert_eq!(s.latency.quantile(1.0), Some(61));
    }

    #[test]
    fn a_second_window_counts_only_its_own_packets() {
        let w = Window::default();
        let r = Reception::new("p".into(), Kind::Audio);
        let sent = Sent::default();
        let probe = |t| Probe {
            counter: t as u32,
            sent_micros: t,
        };
        w.open(100);
        for t in [100, 110, 120] {
            sent.count(Kind::Audio, t as u32);
            r.record(probe(t), t + 5, &w);
        }
        w.close(200);
        assert_eq!((sent.get(Kind::Audio), r.summary().in_window), (3, 3));
        w.clear();
        sent.reset();
        r.reset_window();
        // A late packet of the first window, between the two: neither window's.
        r.record(probe(150), 400, &w);
        assert_eq!(sent.first(Kind::Audio), None);
        assert_eq!((sent.get(Kind::Audio), r.summary().in_window), (0, 0));
        w.open(500);
        r.record(probe(190), 510, &w);
        sent.count(Kind::Audio, 500);
        r.record(probe(500), 540, &w);
        w.close(600);
        let s = r.summary();
        assert_eq!(sent.first(Kind::Audio), Some(500));
        assert_eq!((sent.get(Kind::Audio), s.in_window, s.total), (1, 1, 6));
        assert_eq!(s.latency.quantile(1.0), Some(40));
    }

    #[test]
    fn a_sampled_reception_counts_the_window_from_the_socket() {
        use crate::sampling::Arrivals;
        let arrivals = Arc::new(Arrivals::new(10, 3));
        let track = SampledTrack {
            arrivals: Arc::clone(&arrivals),
            ssrc: 9,
        };
        let r = Reception::sampled("p".into(), Kind::Video, "t".into(), track);
        let w = Window::default();
        let sent = Sent::default();
        // The server numbers counter c as 65_500 + c (across the wrap); counters 0..400 are
        // sent, 100..300 inside the window, and 150, 151 and 299 never arrive.
        let seq = |c: u32| (65_500 + c) as u16;
        for c in 0..400u32 {
            if (100..300).contains(&c) {
                sent.count(Kind::Video, c);
            }
            if [150, 151, 299].contains(&c) {
                continue;
            }
            let mut d = vec![0x80, 96];
            d.extend_from_slice(&seq(c).to_be_bytes());
            d.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9, 0, 0]);
            if arrivals.admit(&d) {
                // What receive() does with a decrypted packet.
                let probe = Probe {
                    counter: c,
                    sent_micros: u64::from(c),
                };
                r.record(probe, u64::from(c) + 5, &w);
                r.locate(c, seq(c));
            }
        }
        assert_eq!(r.total(), 397);
        assert!(r.summary().total == 397 && r.summary().in_window == 0);
        assert_eq!(sent.first(Kind::Video), Some(100));
        assert_eq!(r.delivered(Some(&sent)), 197);
        assert_eq!(r.delivered(None), 0);
        assert_eq!(Sent::default().first(Kind::Audio), None);
    }
}
