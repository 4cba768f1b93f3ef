//! The deadlines of one signaling connection: to be in a room, to finish a message once begun,
//! and to answer pings. Plain bookkeeping with the time and the bytes read passed in; the
//! session closes the connection when [`Deadlines::missed`] names one.

use std::time::Duration;

use tokio::time::Instant;

use crate::limits::EdgeLimits;

/// Bytes read past the last complete message that count as a message under way: control frames
/// and the WebSocket library's read-ahead stay below it.
const UNFINISHED_SLACK: u64 = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Deadlines {
    join_timeout: Duration,
    unfinished_timeout: Duration,
    /// Silence longer than this (two ping intervals) means the client is gone.
    silence_timeout: Duration,
    /// When the connection last came to be outside any room.
    unjoined_since: Option<Instant>,
    /// Bytes read as of the last complete message.
    mark: u64,
    /// Since when more than the slack has been read past `mark`.
    unfinished_since: Option<Instant>,
    last_heard: Instant,
}

impl Deadlines {
    /// A connection just opened, not in a room, having read `read` bytes.
    pub(crate) fn new(limits: &EdgeLimits, now: Instant, read: u64) -> Self {
        Self {
            join_timeout: limits.join_timeout,
            unfinished_timeout: limits.unfinished_timeout,
            silence_timeout: 2 * limits.ping_interval,
            unjoined_since: Some(now),
            mark: read,
            unfinished_since: None,
            last_heard: now,
        }
    }

    /// A text or binary message arrived whole: whatever was read so far is accounted for.
    pub(crate) fn message(&mut self, now: Instant, read: u64) {
        self.last_heard = now;
        self.mark = read;
        self.unfinished_since = None;
    }

    /// Control frames may come in the middle of a message: they settle the account only when
    /// no message is under way.
    pub(crate) fn control_frame(&mut self, now: Instant, read: u64) {
        self.last_heard = now;
        if read <= self.mark + UNFINISHED_SLACK {
            self.message(now, read);
        }
    }

    pub(crate) fn joined(&mut self) {
        self.unjoined_since = None;
    }

    pub(crate) fn left(&mut self, now: Instant) {
        self.unjoined_since = Some(now);
    }

    /// The deadline the connection has missed at `now`, having read `read` bytes, if any.
    pub(crate) fn missed(&mut self, now: Instant, read: u64) -> Option<&'static str> {
        let since = |t: Instant| now.saturating_duration_since(t);
        if self
            .unjoined_since
            .is_some_and(|t| since(t) >= self.join_timeout)
        {
            return Some("no join in time");
        }
        if read > self.mark + UNFINISHED_SLACK {
            let began = *self.unfinished_since.get_or_insert(now);
            if since(began) >= self.unfinished_timeout {
                return Some("message unfinished in time");
            }
        } else {
            self.unfinished_since = None;
        }
        (since(self.last_heard) >= self.silence_timeout).then_some("pings unanswered")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn limits() -> EdgeLimits {
        EdgeLimits {
            join_timeout: 10 * S,
            unfinished_timeout: 10 * S,
            ping_interval: 15 * S,
            ..EdgeLimits::default()
        }
    }

    #[test]
    fn a_connection_must_be_in_a_room_within_the_join_timeout() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(&limits(), t0, 0);
        d.message(t0 + 9 * S, 100);
        assert_eq!(d.missed(t0 + 9 * S, 100), None, "talking is not joining");
        assert_eq!(d.missed(t0 + 10 * S, 100), Some("no join in time"));

        let mut d = Deadlines::new(&limits(), t0, 0);
        d.joined();
        d.message(t0 + 29 * S, 100);
        assert_eq!(d.missed(t0 + 29 * S, 100), None);
        d.left(t0 + 29 * S);
        assert_eq!(
            d.missed(t0 + 39 * S, 100),
            Some("no join in time"),
            "after leaving, again"
        );
    }

    #[test]
    fn a_message_under_way_must_finish_within_the_timeout() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(&limits(), t0, 0);
        d.joined();
        let big = 200 * 1024;
        assert_eq!(
            d.missed(t0 + S, big),
            None,
            "the clock starts when it is seen"
        );
        assert_eq!(d.missed(t0 + 10 * S, big), None);
        assert_eq!(
            d.missed(t0 + 11 * S, big),
            Some("message unfinished in time")
        );

        let mut d = Deadlines::new(&limits(), t0, 0);
        d.joined();
        assert_eq!(d.missed(t0 + S, big), None);
        d.message(t0 + 5 * S, big + 10);
        assert_eq!(d.missed(t0 + 12 * S, big + 10), None, "it finished in time");
    }

    #[test]
    fn pongs_in_the_middle_of_a_message_do_not_restart_its_clock() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(&limits(), t0, 0);
        d.joined();
        let big = 200 * 1024;
        d.missed(t0 + S, big);
        for s in 2..12 {
            d.control_frame(t0 + s * S, big + u64::from(s));
        }
        assert_eq!(
            d.missed(t0 + 11 * S, big + 11),
            Some("message unfinished in time")
        );
    }

    #[test]
    fn a_client_silent_for_two_ping_intervals_is_gone() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(&limits(), t0, 0);
        d.joined();
        d.control_frame(t0 + 20 * S, 10);
        assert_eq!(d.missed(t0 + 49 * S, 10), None);
        assert_eq!(d.missed(t0 + 50 * S, 10), Some("pings unanswered"));
    }
}
