//! A byte meter on each accepted connection. WebSocket messages are assembled inside the
//! WebSocket library, out of the session's sight; counting the bytes read underneath lets the
//! session bound what a client makes the server buffer before it has joined (a budget: past it
//! the connection is simply not read, so the rest waits in the kernel, and reading resumes when
//! the budget is lifted) and notice a message that has been arriving for too long.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The shared view of one connection's reads.
#[derive(Clone, Debug, Default)]
pub(crate) struct Meter(Arc<MeterState>);

#[derive(Debug)]
struct MeterState {
    read: AtomicU64,
    /// Reads stop at this many bytes until the budget is raised.
    budget: AtomicU64,
    /// The read waiting for the budget to be raised.
    waiting: AtomicWaker,
}

impl Default for MeterState {
    fn default() -> Self {
        Self {
            read: AtomicU64::new(0),
            budget: AtomicU64::new(u64::MAX),
            waiting: AtomicWaker::new(),
        }
    }
}

impl Meter {
    /// Bytes read from the connection so far.
    pub(crate) fn read(&self) -> u64 {
        self.0.read.load(Ordering::Relaxed)
    }

    /// Lets the connection read at most `more` bytes beyond what it has read.
    pub(crate) fn allow_only(&self, more: u64) {
        let limit = self.read().saturating_add(more);
        self.0.budget.store(limit, Ordering::Relaxed);
        self.0.waiting.wake();
    }

    /// Lifts the budget.
    pub(crate) fn unlimit(&self) {
        self.0.budget.store(u64::MAX, Ordering::Relaxed);
        self.0.waiting.wake();
    }

    /// Bytes the connection may still read.
    fn remaining(&self) -> u64 {
        self.0
            .budget
            .load(Ordering::Relaxed)
            .saturating_sub(self.read())
    }

    fn count(&self, n: usize) {
        self.0.read.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// An I/O stream whose reads are counted by a [`Meter`].
pub(crate) struct Metered<T> {
    inner: T,
    meter: Meter,
}

impl<T> Metered<T> {
    pub(crate) fn new(inner: T, meter: Meter) -> Self {
        Self { inner, meter }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Metered<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut remaining = self.meter.remaining();
        if remaining == 0 {
            // Registered before looking again, so a raise in between is not missed.
            self.meter.0.waiting.register(cx.waker());
            remaining = self.meter.remaining();
            if remaining == 0 {
                return Poll::Pending;
            }
        }
        if buf.remaining() as u64 <= remaining {
            let before = buf.filled().len();
            let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
            self.meter.count(buf.filled().len() - before);
            return polled;
        }
        // Never read past the budget, not even into a buffer.
        let slice = buf.initialize_unfilled_to(remaining as usize);
        let mut limited = ReadBuf::new(slice);
        let polled = Pin::new(&mut self.inner).poll_read(cx, &mut limited);
        let n = limited.filled().len();
        buf.advance(n);
        self.meter.count(n);
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Metered<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn reads_are_counted_and_stop_past_the_budget() {
        let meter = Meter::default();
        let (client, server) = tokio::io::duplex(64);
        let mut metered = Metered::new(server, meter.clone());
        let mut client = client;
        tokio::io::AsyncWriteExt::write_all(&mut client, &[7; 10])
            .await
            .unwrap();
        let mut buf = [0; 10];
        metered.read_exact(&mut buf).await.unwrap();
        assert_eq!(meter.read(), 10);

        meter.allow_only(4);
        tokio::io::AsyncWriteExt::write_all(&mut client, &[7; 10])
            .await
            .unwrap();
        let mut more = [0; 10];
        let n = metered.read(&mut more).await.unwrap();
        assert_eq!(n, 4, "reads stop at the budget");
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            metered.read(&mut more),
        );
        assert!(waiting.await.is_err(), "and wait there");
        assert_eq!(meter.read(), 14);

        let raise = {
            let meter = meter.clone();
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                meter.unlimit();
            }
        };
        let (read, ()) = tokio::join!(metered.read(&mut more), raise);
        assert_eq!(read.unwrap(), 6, "until the budget is raised");
    }
}
