//! Receiver reports only for incoming streams that webrtc-rs has bound to a track.
//!
//! A simulcast publisher (Chromium) does not declare its layers' SSRCs; webrtc-rs learns which
//! layer an SSRC is from the MID and RID header extensions of its first packets ("simulcast
//! probing": it reads up to [`PROBE_READS`] packets of a new SSRC, then gives the stream up and
//! tries again with the next packet). libwebrtc stops sending MID and RID on an SSRC once an
//! RTCP receiver report names it, and webrtc-rs's receiver-report interceptor reports on every
//! stream from its first packet, probing or not. A probe that failed once (the transceiver was
//! not ready, the machine was busy) then never succeeds: the layer never reaches the room, and
//! the server logs "incoming SSRC failed Simulcast probing" five times a second. Seen in the
//! browser tests on a loaded machine (a participant whose video never arrived). webrtc-rs
//! PR #623, still open, fixes it inside the interceptor; this wrapper does the same from outside:
//! the receiver-report interceptor learns of a stream only when more packets are read from it
//! than a probe ever reads, which happens only once the stream feeds a track.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;
use webrtc::interceptor::stream_info::StreamInfo;
use webrtc::interceptor::{
    Attributes, Interceptor, InterceptorBuilder, RTCPReader, RTCPWriter, RTPReader, RTPWriter,
};

/// Packets webrtc-rs 0.17's simulcast probe reads from a new SSRC at most
/// (`SIMULCAST_PROBE_COUNT` + 1) before it gives the stream up.
pub(crate) const PROBE_READS: usize = 11;

type Shared = Arc<dyn Interceptor + Send + Sync>;
type Result<T> = std::result::Result<T, webrtc::interceptor::Error>;

/// Builds `inner` (webrtc-rs's receiver-report interceptor) behind [`BoundReports`].
pub(crate) struct BoundReportsBuilder<B> {
    inner: B,
}

impl<B: InterceptorBuilder> BoundReportsBuilder<B> {
    pub(crate) fn new(inner: B) -> Self {
        Self { inner }
    }
}

impl<B: InterceptorBuilder> InterceptorBuilder for BoundReportsBuilder<B> {
    fn build(&self, id: &str) -> Result<Shared> {
        Ok(Arc::new(BoundReports {
            inner: self.inner.build(id)?,
        }))
    }
}

/// Passes everything to `inner` except incoming streams, which it sees only once bound.
pub(crate) struct BoundReports {
    inner: Shared,
}

#[async_trait]
impl Interceptor for BoundReports {
    async fn bind_rtcp_reader(
        &self,
        reader: Arc<dyn RTCPReader + Send + Sync>,
    ) -> Arc<dyn RTCPReader + Send + Sync> {
        self.inner.bind_rtcp_reader(reader).await
    }

    async fn bind_rtcp_writer(
        &self,
        writer: Arc<dyn RTCPWriter + Send + Sync>,
    ) -> Arc<dyn RTCPWriter + Send + Sync> {
        self.inner.bind_rtcp_writer(writer).await
    }

    async fn bind_local_stream(
        &self,
        info: &StreamInfo,
        writer: Arc<dyn RTPWriter + Send + Sync>,
    ) -> Arc<dyn RTPWriter + Send + Sync> {
        self.inner.bind_local_stream(info, writer).await
    }

    async fn unbind_local_stream(&self, info: &StreamInfo) {
        self.inner.unbind_local_stream(info).await
    }

    async fn bind_remote_stream(
        &self,
        info: &StreamInfo,
        reader: Arc<dyn RTPReader + Send + Sync>,
    ) -> Arc<dyn RTPReader + Send + Sync> {
        Arc::new(LateBinding {
            inner: Arc::clone(&self.inner),
            info: info.clone(),
            reader,
            reads: AtomicUsize::new(0),
            bound: OnceCell::new(),
        })
    }

    async fn unbind_remote_stream(&self, info: &StreamInfo) {
        // Harmless for a stream the inner interceptor never saw: it forgets an unknown SSRC.
        self.inner.unbind_remote_stream(info).await
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

/// An incoming stream's reader that hands the stream to the inner interceptor on the first read
/// past what a probe reads.
struct LateBinding {
    inner: Shared,
    info: StreamInfo,
    reader: Arc<dyn RTPReader + Send + Sync>,
    reads: AtomicUsize,
    bound: OnceCell<Arc<dyn RTPReader + Send + Sync>>,
}

#[async_trait]
impl RTPReader for LateBinding {
    async fn read(
        &self,
        buf: &mut [u8],
        attributes: &Attributes,
    ) -> Result<(webrtc::rtp::packet::Packet, Attributes)> {
        if let Some(observed) = self.bound.get() {
            return observed.read(buf, attributes).await;
        }
        if self.reads.fetch_add(1, Ordering::Relaxed) < PROBE_READS {
            return self.reader.read(buf, attributes).await;
        }
        let observed = self
            .bound
            .get_or_init(|| {
                self.inner
                    .bind_remote_stream(&self.info, Arc::clone(&self.reader))
            })
            .await;
        observed.read(buf, attributes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use webrtc::rtp::packet::Packet;

    /// Counts the streams bound to it and the packets read through what it returned.
    #[derive(Default)]
    struct Recorder {
        bound: Mutex<Vec<u32>>,
        observed: Arc<AtomicUsize>,
    }

    struct Observed {
        reader: Arc<dyn RTPReader + Send + Sync>,
        observed: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl RTPReader for Observed {
        async fn read(&self, buf: &mut [u8], a: &Attributes) -> Result<(Packet, Attributes)> {
            self.observed.fetch_add(1, Ordering::Relaxed);
            self.reader.read(buf, a).await
        }
    }

    #[async_trait]
    impl Interceptor for Recorder {
        async fn bind_rtcp_reader(
            &self,
            r: Arc<dyn RTCPReader + Send + Sync>,
        ) -> Arc<dyn RTCPReader + Send + Sync> {
            r
        }
        async fn bind_rtcp_writer(
            &self,
            w: Arc<dyn RTCPWriter + Send + Sync>,
        ) -> Arc<dyn RTCPWriter + Send + Sync> {
            w
        }
        async fn bind_local_stream(
            &self,
            _: &StreamInfo,
            w: Arc<dyn RTPWriter + Send + Sync>,
        ) -> Arc<dyn RTPWriter + Send + Sync> {
            w
        }
        async fn unbind_local_stream(&self, _: &StreamInfo) {}
        async fn bind_remote_stream(
            &self,
            info: &StreamInfo,
            reader: Arc<dyn RTPReader + Send + Sync>,
        ) -> Arc<dyn RTPReader + Send + Sync> {
            self.bound.lock().unwrap().push(info.ssrc);
            Arc::new(Observed {
                reader,
                observed: Arc::clone(&self.observed),
            })
        }
        async fn unbind_remote_stream(&self, _: &StreamInfo) {}
        async fn close(&self) -> Result<()> {
            Ok(())
        }
    }

    /// A stream of packets from one SSRC.
    struct Source(u32);

    #[async_trait]
    impl RTPReader for Source {
        async fn read(&self, _: &mut [u8], a: &Attributes) -> Result<(Packet, Attributes)> {
            let mut packet = Packet::default();
            packet.header.ssrc = self.0;
            Ok((packet, a.clone()))
        }
    }

    async fn stream_read(wrapper: &BoundReports, ssrc: u32, packets: usize) {
        let info = StreamInfo {
            ssrc,
            ..Default::default()
        };
        let reader = wrapper
            .bind_remote_stream(&info, Arc::new(Source(ssrc)))
            .await;
        let mut buf = [0u8; 1500];
        for _ in 0..packets {
            let (packet, _) = reader.read(&mut buf, &Attributes::new()).await.unwrap();
            assert_eq!(packet.header.ssrc, ssrc, "every packet passes through");
        }
    }

    fn wrapper() -> (BoundReports, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let inner: Shared = recorder.clone();
        (BoundReports { inner }, recorder)
    }

    #[tokio::test]
    async fn a_stream_given_up_after_a_probe_is_never_reported() {
        let (wrapper, recorder) = wrapper();
        // webrtc-rs gives a stream up after PROBE_READS packets without MID and RID, and tries
        // again with a new stream for the same SSRC.
        stream_read(&wrapper, 7, PROBE_READS).await;
        stream_read(&wrapper, 7, PROBE_READS).await;
        assert!(recorder.bound.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_stream_read_past_a_probe_is_reported_once_and_sees_every_later_packet() {
        let (wrapper, recorder) = wrapper();
        stream_read(&wrapper, 9, PROBE_READS + 50).await;
        assert_eq!(*recorder.bound.lock().unwrap(), vec![9]);
        assert_eq!(recorder.observed.load(Ordering::Relaxed), 50);
    }
}
