//! The measurement window, and what each side counts in it.
//!
//! A window is a span of *send* times. A publisher counts the packets it stamps inside it; a
//! subscriber counts the packets it receives whose stamp is inside it, so packets in flight at
//! either edge are neither lost nor counted twice, and a track that delivers nothing shows as
//! 100 % loss. Receivers are collected a short grace period after the window closes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::histogram::Histogram;
use crate::layers::VideoLog;
use crate::media::{Probe, VideoProbe};

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

    pub fn contains(&self, sent_micros: u64) -> bool {
        sent_micros >= self.start.load(Ordering::Relaxed)
            && sent_micros < self.end.load(Ordering::Relaxed)
    }
}

/// Packets one publisher stamped inside the window, per kind.
#[derive(Default)]
pub struct Sent {
    audio: AtomicU64,
    video: AtomicU64,
}

impl Sent {
    pub fn count(&self, kind: Kind) {
        self.of(kind).fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, kind: Kind) -> u64 {
        self.of(kind).load(Ordering::Relaxed)
    }

    fn of(&self, kind: Kind) -> &AtomicU64 {
        match kind {
            Kind::Audio => &self.audio,
            Kind::Video => &self.video,
        }
    }
}

/// What one subscriber received on one track.
pub struct Reception {
    /// The publishing participant's id (the forwarded stream's id).
    pub publisher: String,
    pub kind: Kind,
    /// The forwarded track's id (the subscriber's `MediaStreamTrack.id`).
    pub track_id: String,
    inner: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: u64,
    in_window: u64,
    latency: Histogram,
    /// Simulcast video only.
    video: VideoLog,
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

    pub fn total(&self) -> u64 {
        self.inner.lock().map(|c| c.total).unwrap_or(0)
    }

    pub fn summary(&self) -> ReceptionSummary {
        match self.inner.lock() {
            Ok(c) => ReceptionSummary {
                total: c.total,
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
}
