//! Keeping clients from writing the operator's logs: text that comes from a client is clipped
//! before it is logged (and logged with `?`, so control characters are escaped in the text format
//! too), each connection logs a given refusal at most once per window, and refusals that happen
//! per request are logged at most once per interval across the server.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::protocol::ErrorCode;

/// Characters of client text a log line may carry.
pub(crate) const SHOWN_CHARS: usize = 120;

/// At most [`SHOWN_CHARS`] characters of `text`, marked when clipped. Log it with `?`.
pub(crate) fn clip(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len())),
    }
}

/// Like [`clip`], for bytes that may not be UTF-8 (header values).
pub(crate) fn clip_bytes(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(SHOWN_CHARS * 4)];
    clip(&String::from_utf8_lossy(shown)).into_owned()
}

/// Which refusals one connection has logged in the current window.
#[derive(Debug)]
pub(crate) struct RefusalLog {
    window: Duration,
    last: [Option<Instant>; ErrorCode::ALL.len()],
}

impl RefusalLog {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            last: [None; ErrorCode::ALL.len()],
        }
    }

    /// Whether a refusal with `code` should be logged now.
    pub(crate) fn should_log(&mut self, code: ErrorCode, now: Instant) -> bool {
        let last = &mut self.last[code as usize];
        if last.is_some_and(|t| now.saturating_duration_since(t) < self.window) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// Lets one log line through per interval, whoever causes it.
#[derive(Debug)]
pub(crate) struct LogGate {
    start: Instant,
    interval: Duration,
    /// Milliseconds since `start` before which nothing passes.
    closed_until: AtomicU64,
    suppressed: AtomicU64,
}

impl LogGate {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            start: Instant::now(),
            interval,
            closed_until: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines suppressed since the last one passed)` when a line may be logged now.
    pub(crate) fn pass(&self, now: Instant) -> Option<u64> {
        let now_ms = now.saturating_duration_since(self.start).as_millis() as u64;
        let until = self.closed_until.load(Ordering::Relaxed);
        let next = now_ms + self.interval.as_millis() as u64;
        if now_ms < until
            || self
                .closed_until
                .compare_exchange(until, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_client_text_is_clipped_and_says_how_long_it_was() {
        assert_eq!(clip("short"), "short");
        let long = "x".repeat(100_000);
        let shown = clip(&long);
        assert!(shown.chars().count() < SHOWN_CHARS + 20, "{shown}");
        assert!(shown.ends_with("(100000 bytes)"));
        assert_eq!(
            clip(&"é".repeat(200)).chars().filter(|c| *c == 'é').count(),
            SHOWN_CHARS
        );
    }

    #[test]
    fn logged_with_debug_formatting_control_characters_cannot_forge_lines() {
        let forged = clip("x\n2026-01-01T00:00:00Z  WARN forged\u{1b}[31m");
        let line = format!("{forged:?}");
        assert!(!line.contains('\n') && !line.contains('\u{1b}'), "{line}");
    }

    #[test]
    fn a_connection_logs_each_refusal_once_per_window() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(Duration::from_secs(10));
        assert!(log.should_log(ErrorCode::BadJson, t0));
        assert!(!log.should_log(ErrorCode::BadJson, t0 + Duration::from_secs(1)));
        assert!(
            log.should_log(ErrorCode::UnknownType, t0),
            "codes count apart"
        );
        assert!(log.should_log(ErrorCode::BadJson, t0 + Duration::from_secs(11)));
    }

    #[test]
    fn the_gate_lets_one_line_per_interval_through_and_counts_the_rest() {
        let gate = LogGate::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(gate.pass(t0), Some(0));
        assert_eq!(gate.pass(t0), None);
        assert_eq!(gate.pass(t0 + Duration::from_millis(500)), None);
        assert_eq!(gate.pass(t0 + Duration::from_millis(1100)), Some(2));
    }
}
