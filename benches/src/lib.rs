//! roomcast's fan-out benchmark: a load generator that joins real WebRTC peers (webrtc-rs,
//! ICE/DTLS/SRTP) to a roomcast process over its own signaling protocol, measures what every
//! subscriber receives, samples the SFU's CPU time and memory, and compares the cost per
//! forwarded packet with the physical floor (SRTP protect + batched UDP send) measured in the
//! same run.
//!
//! The binary (`src/main.rs`) drives the scenarios; the modules are usable from the criterion
//! microbenchmarks too.

pub mod adaptive;
pub mod admin;
pub mod clock;
pub mod cluster;
pub mod floor;
pub mod histogram;
pub mod janus;
pub mod janus_process;
pub mod join_storm;
pub mod layers;
pub mod media;
pub mod netns;
pub mod peer;
pub mod plot;
pub mod police;
pub mod proc_stats;
pub mod recv_batch;
pub mod report;
pub mod sampling;
pub mod saturation;
pub mod scenario;
pub mod sfu_process;
pub mod signaling;
pub mod simulcast;
pub mod socket_reader;
pub mod window;
