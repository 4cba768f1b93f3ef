//! Per-subscriber video layer allocation for the roomcast SFU.
//!
//! Given one subscriber's downlink budget and the video tracks it receives,
//! [`Allocator`] decides for each track which simulcast layer to forward, or
//! pauses it. It is plain state and arithmetic: no I/O and no clock of its own
//! (the caller passes `Instant`s), so it is deterministic and easy to test.

mod allocator;
mod demand;
mod hysteresis;

pub(crate) use allocator::{Allocation, Allocator, AllocatorConfig, Decision, PauseReason};
pub(crate) use demand::{Layer, Priority, VideoDemand};
