//! One participant's WebM file, through libwebm's muxer (the `webm` crate).
//!
//! The muxer writes in its file mode: the segment's size is written as "unknown" at the start
//! and each cluster is closed as the next begins, so whatever reached the disk plays, the last
//! cluster cut short included; [`WebmFile::finish`] then writes the duration and the cues that
//! make it seekable. Writes go through a buffer that the recorder flushes every
//! [`FLUSH_EVERY`] (what a crash can lose). libwebm reports a failed write only as `false`; the
//! I/O error itself is kept here so the log can say what went wrong (a full disk, say).

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use webm::mux::{
    AudioCodecId, AudioTrack, Segment, SegmentBuilder, SegmentMode, VideoCodecId, VideoTrack,
    Writer,
};

use super::clock::Track;
use super::RecordError;

/// How much a crash may lose, at most, of what the server received.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Opus as WebRTC sends it: 48 kHz, two channels.
const OPUS_RATE: u32 = 48_000;
const OPUS_CHANNELS: u8 = 2;

pub(crate) struct WebmFile {
    segment: Segment<Output>,
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
    output: Output,
}

impl WebmFile {
    pub(crate) fn create(
        path: &Path,
        video: Option<(u16, u16)>,
        audio: bool,
    ) -> Result<Self, RecordError> {
        let file = File::create_new(path).map_err(RecordError::Io)?;
        let output = Output(Arc::new(Mutex::new(Inner {
            file: BufWriter::with_capacity(256 * 1024, file),
            error: None,
        })));
        let mux = |e: webm::mux::Error| RecordError::Mux(e.to_string());
        let mut builder = SegmentBuilder::new(Writer::new(output.clone()))
            .map_err(mux)?
            .set_mode(SegmentMode::File)
            .map_err(mux)?
            .set_writing_app("roomcast")
            .map_err(mux)?;
        let mut video_track = None;
        if let Some((width, height)) = video {
            let (b, track) = builder
                .add_video_track(u32::from(width), u32::from(height), VideoCodecId::VP8, None)
                .map_err(mux)?;
            builder = b;
            video_track = Some(track);
        }
        let mut audio_track = None;
        if audio {
            let (b, track) = builder
                .add_audio_track(
                    OPUS_RATE,
                    u32::from(OPUS_CHANNELS),
                    AudioCodecId::Opus,
                    None,
                )
                .map_err(mux)?;
            builder = b.set_codec_private(track, &opus_head()).map_err(mux)?;
            audio_track = Some(track);
        }
        let file = Self {
            segment: builder.build(),
            video: video_track,
            audio: audio_track,
            output,
        };
        file.output.check()?;
        Ok(file)
    }

    pub(crate) fn write(
        &mut self,
        track: Track,
        nanos: u64,
        keyframe: bool,
        data: &[u8],
    ) -> Result<(), RecordError> {
        let number: u64 = match (track, self.video, self.audio) {
            (Track::Video, Some(t), _) => t.into(),
            (Track::Audio, _, Some(t)) => t.into(),
            _ => return Ok(()),
        };
        let written = self.segment.add_frame(number, data, nanos, keyframe);
        self.output.check()?;
        written.map_err(|e| RecordError::Mux(e.to_string()))
    }

    /// Pushes what is buffered to the file.
    pub(crate) fn flush(&mut self) -> Result<(), RecordError> {
        let result = self.output.lock().file.flush();
        self.output.keep(result).map_err(RecordError::Io)
    }

    /// Writes the duration and cues, and closes the file.
    pub(crate) fn finish(self, duration: Duration) -> Result<(), RecordError> {
        let output = self.output;
        let finished = self.segment.finalize(Some(duration.as_millis() as u64));
        output.check()?;
        if finished.is_err() {
            return Err(RecordError::Mux("finalizing the segment failed".into()));
        }
        let mut inner = output.lock();
        inner.file.flush().map_err(RecordError::Io)?;
        inner.file.get_ref().sync_data().map_err(RecordError::Io)
    }
}

/// The file behind libwebm, shared with [`WebmFile`] so that it can flush it (libwebm has no
/// flush of its own) and read the first I/O error, which libwebm reduces to `false`.
#[derive(Clone)]
struct Output(Arc<Mutex<Inner>>);

struct Inner {
    file: BufWriter<File>,
    error: Option<io::Error>,
}

impl Output {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn keep<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            let mut inner = self.lock();
            if inner.error.is_none() {
                inner.error = Some(io::Error::new(e.kind(), e.to_string()));
            }
        }
        result
    }

    fn check(&self) -> Result<(), RecordError> {
        match self.lock().error.take() {
            Some(e) => Err(RecordError::Io(e)),
            None => Ok(()),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.lock().file.write(buf);
        self.keep(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.lock().file.flush();
        self.keep(result)
    }
}

impl Seek for Output {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let result = self.lock().file.seek(pos);
        self.keep(result)
    }
}

/// The Opus identification header (RFC 7845 §5.1) that Matroska wants as the track's
/// CodecPrivate.
fn opus_head() -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(OPUS_CHANNELS);
    head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip
    head.extend_from_slice(&OPUS_RATE.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family: mono or stereo
    head
}
