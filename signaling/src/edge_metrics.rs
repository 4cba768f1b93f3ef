//! Counters the edge keeps for `/metrics`: WebSocket connections and refusals by error code.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use crate::protocol::ErrorCode;

#[derive(Debug, Default)]
pub struct EdgeMetrics {
    open_connections: AtomicI64,
    connections: AtomicU64,
    errors: [AtomicU64; ErrorCode::ALL.len()],
}

impl EdgeMetrics {
    /// Counts a connection as open until the returned guard is dropped.
    pub(crate) fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(Arc::clone(self))
    }

    pub(crate) fn error_sent(&self, code: ErrorCode) {
        self.errors[code as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn open_connections(&self) -> i64 {
        self.open_connections.load(Ordering::Relaxed)
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> impl Iterator<Item = (ErrorCode, u64)> + '_ {
        ErrorCode::ALL
            .into_iter()
            .map(|code| (code, self.errors[code as usize].load(Ordering::Relaxed)))
    }
}

pub(crate) struct ConnectionGuard(Arc<EdgeMetrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_while_open_and_in_total() {
        let m = Arc::new(EdgeMetrics::default());
        let a = m.connection_opened();
        let b = m.connection_opened();
        drop(a);
        assert_eq!((m.open_connections(), m.connections()), (1, 2));
        drop(b);
        assert_eq!(m.open_connections(), 0);
    }

    #[test]
    fn errors_are_counted_by_code() {
        let m = EdgeMetrics::default();
        m.error_sent(ErrorCode::BadJson);
        m.error_sent(ErrorCode::BadJson);
        m.error_sent(ErrorCode::WrongState);
        let counts: Vec<_> = m.errors().filter(|(_, n)| *n > 0).collect();
        assert_eq!(
            counts,
            [(ErrorCode::BadJson, 2), (ErrorCode::WrongState, 1)]
        );
    }
}
