//! Decides whether a message a client wrote on its `data` channel is relayed: a plain struct
//! with time passed in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::envelope::Envelope;
use super::{DataRejection, MAX_DATA_MESSAGE_BYTES};
use crate::{ParticipantId, RateLimiter};

/// How often a sender over its rate is told so: once is enough to explain the silence, and an
/// error for every dropped message would let a flood be answered by a flood.
const RATE_ERROR_INTERVAL: Duration = Duration::from_secs(1);

/// A message on its way: who gets it and what they read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Relay {
    pub(crate) to: Option<Vec<String>>,
    pub(crate) message: Arc<str>,
}

/// A message that stops here, and whether to tell its sender.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) rejection: DataRejection,
    pub(crate) tell: bool,
}

/// One sender's gate.
pub(crate) struct DataGate {
    from: ParticipantId,
    may_send: bool,
    rate: RateLimiter,
    last_rate_error: Option<Instant>,
}

impl DataGate {
    /// `may_send` is the sender's right to publish; `per_second` its sustained rate, which is
    /// also its burst.
    pub(crate) fn new(from: ParticipantId, may_send: bool, per_second: f64, now: Instant) -> Self {
        let per_second = per_second.max(0.1);
        Self {
            from,
            may_send,
            rate: RateLimiter::new(per_second, per_second.max(1.0), now),
            last_rate_error: None,
        }
    }

    /// Every message counts against the rate, refused ones too: a client cannot get around the
    /// rate by sending rubbish.
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        data: &[u8],
        is_string: bool,
    ) -> Result<Relay, Refusal> {
        if !self.rate.allow(now) {
            let tell = self
                .last_rate_error
                .is_none_or(|t| now.saturating_duration_since(t) >= RATE_ERROR_INTERVAL);
            if tell {
                self.last_rate_error = Some(now);
            }
            return Err(Refusal {
                rejection: DataRejection::RateLimited,
                tell,
            });
        }
        self.check(data, is_string).map_err(|rejection| Refusal {
            rejection,
            tell: true,
        })
    }

    fn check(&self, data: &[u8], is_string: bool) -> Result<Relay, DataRejection> {
        if data.len() > MAX_DATA_MESSAGE_BYTES {
            return Err(DataRejection::TooLarge {
                size: data.len(),
                max: MAX_DATA_MESSAGE_BYTES,
            });
        }
        if !self.may_send {
            return Err(DataRejection::NotAllowed);
        }
        if !is_string {
            return Err(DataRejection::Invalid("binary messages are not relayed"));
        }
        let text = std::str::from_utf8(data)
            .map_err(|_| DataRejection::BadJson("not UTF-8".to_owned()))?;
        let envelope = Envelope::parse(text)?;
        Ok(Relay {
            message: envelope.delivery(&self.from),
            to: envelope.to,
        })
    }
}
