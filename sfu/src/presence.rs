//! What others may observe of a participant while its task owns everything else: connection
//! state, selected candidates and forwarded tracks. Updated on events, never per packet.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::publication::Publication;
use crate::stats::{ConnectionState, OutboundStats, TrackReport};
use crate::subscription;

pub(crate) struct Presence {
    pub(crate) joined: SystemTime,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    connection: ConnectionState,
    candidate_pair: Option<(String, String)>,
    downlink_bps: Option<u64>,
    forwarded: Vec<(Arc<Publication>, Arc<OutboundStats>)>,
}

impl Presence {
    pub(crate) fn new() -> Self {
        Self {
            joined: SystemTime::now(),
            inner: Mutex::default(),
        }
    }

    pub(crate) fn set_connection(&self, state: ConnectionState) {
        self.lock().connection = state;
    }

    pub(crate) fn set_candidate_pair(&self, local: String, remote: String) {
        self.lock().candidate_pair = Some((local, remote));
    }

    pub(crate) fn set_downlink(&self, estimate_bps: u64) {
        self.lock().downlink_bps = Some(estimate_bps);
    }

    /// The server's estimate of what the participant's downlink carries.
    pub(crate) fn downlink(&self) -> Option<u64> {
        self.lock().downlink_bps
    }

    pub(crate) fn add_forwarded(&self, publication: Arc<Publication>, stats: Arc<OutboundStats>) {
        self.lock().forwarded.push((publication, stats));
    }

    pub(crate) fn remove_forwarded(&self, publication_id: &str) {
        self.lock()
            .forwarded
            .retain(|(p, _)| p.id != publication_id);
    }

    pub(crate) fn connection(&self) -> ConnectionState {
        self.lock().connection
    }

    pub(crate) fn candidate_pair(&self) -> Option<(String, String)> {
        self.lock().candidate_pair.clone()
    }

    pub(crate) fn forwarded(&self) -> Vec<TrackReport> {
        let inner = self.lock();
        inner
            .forwarded
            .iter()
            .map(|(p, s)| subscription::report(p, s))
            .collect()
    }

    pub(crate) fn forwarded_count(&self) -> usize {
        self.lock().forwarded.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
