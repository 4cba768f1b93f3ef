//! The recorder of one participant in a room being recorded: the one owner of its file. It taps
//! the participant's camera and microphone like one more subscription (a queue fed by each
//! track's fan-out, so the per-packet path is unchanged; one simulcast layer is recorded),
//! reassembles frames, asks for keyframes, places frames on the sender's clock and writes them.
//! A new camera or microphone track once the file has started (a track stopped and started
//! again, whose clock starts afresh) closes the file and starts the next one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use super::assembler::{Depacketizer, FrameAssembler};
use super::catalog::{Catalog, Meta};
use super::clock::Track;
use super::timeline::{Step, Timeline};
use super::webm_file::{WebmFile, FLUSH_EVERY};
use super::RecordError;
use crate::forwarder::PayloadFormat;
use crate::peer::{MediaKind, SenderReportCell};
use crate::publication::{Ingress, Publication, Subscriber, SubscriptionControl};
use crate::signal::Source;
use crate::stats::millis_since_epoch;
use crate::subscription::next_subscription_id;
use crate::ParticipantInfo;

/// Packets a tap holds for the recorder; a recorder that falls this far behind loses packets
/// (and asks for a keyframe) rather than hold the fan-out up.
const TAP_QUEUE: usize = 1024;

/// How often held frames are looked at when no packet comes.
const TICK: Duration = Duration::from_millis(50);

pub(crate) enum Command {
    Publish(Arc<Publication>),
    Unpublish(String),
}

/// Tells the room's recorder that a participant's recording ended on an error.
pub(crate) type Failures = mpsc::UnboundedSender<(String, RecordError)>;

pub(crate) struct Settings {
    pub(crate) catalog: Catalog,
    pub(crate) room: String,
    pub(crate) info: ParticipantInfo,
}

/// One track fed to the file.
struct Tap {
    publication: Arc<Publication>,
    subscription: u64,
    packets: mpsc::Receiver<Arc<Ingress>>,
    /// The simulcast layer recorded now; `None` until its first keyframe.
    layer: Option<u8>,
    /// The layer to move to at its next keyframe: the top one the publisher sends.
    wanted: Option<u8>,
    last_request: Option<Instant>,
    assembler: FrameAssembler,
    depacketizer: Depacketizer,
    reports: Option<Arc<SenderReportCell>>,
    last_report: Option<(u32, u32)>,
}

/// How often a tap asks for a keyframe of the layer it wants to move to.
const SWITCH_REQUEST_EVERY: Duration = Duration::from_secs(1);

impl Tap {
    /// Subscribes to every layer: which one is recorded is the tap's choice, made at keyframes.
    fn start(publication: Arc<Publication>) -> Self {
        let (queue, packets) = mpsc::channel(TAP_QUEUE);
        let subscription = next_subscription_id();
        let control = Arc::new(SubscriptionControl::new(Some(0)));
        control.wanted.store(u8::MAX, Ordering::Relaxed);
        publication.tap(Subscriber::new(subscription, queue, control));
        let depacketizer = match publication.format {
            PayloadFormat::Vp8 => Depacketizer::Vp8,
            _ => Depacketizer::Whole,
        };
        let single = publication.layer_count <= 1;
        Self {
            publication,
            subscription,
            packets,
            layer: single.then_some(0),
            wanted: None,
            last_request: None,
            assembler: FrameAssembler::new(depacketizer),
            depacketizer,
            reports: None,
            last_report: None,
        }
    }

    fn stop(&self) {
        self.publication.untap(self.subscription);
    }

    /// Looks for a better layer than the one recorded (the top one the publisher sends now), and
    /// asks for a keyframe of it.
    fn look_for_layer(&mut self, now: Instant) {
        if self.publication.layer_count <= 1 {
            return;
        }
        let top = self.publication.top_usable_layer();
        self.wanted = top.filter(|&t| Some(t) != self.layer);
        if let Some(layer) = self.wanted {
            let due = self
                .last_request
                .is_none_or(|t| now.duration_since(t) >= SWITCH_REQUEST_EVERY);
            if due {
                self.last_request = Some(now);
                self.publication.request_keyframe(layer);
            }
        }
    }

    /// Whether this packet is where the recording moves to another layer (see [`switches`]).
    fn switches_here(&self, ingress: &Ingress, file_open: bool) -> bool {
        let layer = ingress.info.layer;
        switches(
            self.layer,
            self.wanted,
            file_open,
            (layer, ingress.info.keyframe),
            || {
                self.publication
                    .sender_reports(layer)
                    .is_some_and(|r| r.load().is_some())
            },
        )
    }

    fn switch_to(&mut self, layer: u8) {
        tracing::debug!(publication = %self.publication.id, from = ?self.layer, to = layer, "recording another simulcast layer");
        self.layer = Some(layer);
        self.wanted = None;
        self.assembler = FrameAssembler::new(self.depacketizer);
        self.assembler.take_keyframe_request();
        self.reports = None;
        self.last_report = None;
    }
}

/// Whether a tap recording `current` moves to `packet`'s layer at this packet (layer, whether it
/// is a keyframe): at a keyframe of any layer before the first, and after that at a keyframe of
/// the `wanted` one, once the file has started and that layer has a sender report.
///
/// Before the file starts, the frames held for it would be dropped by a switch (a held frame is
/// placed by its layer's clock, which a new layer's replaces): waiting there for the top layer
/// cost a newcomer's recording its first 0.5–2.3 s, all of what the viewers saw of it meanwhile.
/// The file starts on the first layer instead and moves up within it, as VP8 allows. The sender
/// report places the new layer's frames on the same clock as the old layer's.
fn switches(
    current: Option<u8>,
    wanted: Option<u8>,
    file_open: bool,
    (layer, keyframe): (u8, bool),
    has_report: impl FnOnce() -> bool,
) -> bool {
    if !keyframe || current == Some(layer) {
        return false;
    }
    current.is_none() || file_open && wanted == Some(layer) && has_report()
}

/// Which of the file's tracks a publication would be, if any: VP8 camera video, Opus audio.
fn track_of(publication: &Publication) -> Option<Track> {
    let mime = publication.codec.mime_type().to_ascii_lowercase();
    match (publication.kind, publication.source) {
        (MediaKind::Video, Source::Camera) if mime == "video/vp8" => Some(Track::Video),
        (MediaKind::Audio, _) if mime == "audio/opus" => Some(Track::Audio),
        _ => None,
    }
}

struct Recorder {
    settings: Settings,
    failures: Failures,
    taps: [Option<Tap>; 2],
    timeline: Timeline,
    file: Option<(WebmFile, Meta)>,
    last_flush: Instant,
}

pub(crate) fn spawn(settings: Settings, failures: Failures) -> mpsc::UnboundedSender<Command> {
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let span =
        tracing::info_span!("recording", room = %settings.room, participant = %settings.info.id);
    let now = Instant::now();
    let recorder = Recorder {
        settings,
        failures,
        taps: [None, None],
        timeline: Timeline::new(90_000, 48_000, now),
        file: None,
        last_flush: now,
    };
    let open = OpenRecorder::new();
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            recorder.run(commands_rx).await;
            drop(open);
        },
        span,
    ));
    commands
}

/// Participant recorders still running, in the whole process: shutdown waits for them to close
/// their files (a file left unfinished plays, but says no duration).
static OPEN_RECORDERS: AtomicUsize = AtomicUsize::new(0);

/// Counts one recorder as running for as long as it lives.
struct OpenRecorder;

impl OpenRecorder {
    fn new() -> Self {
        OPEN_RECORDERS.fetch_add(1, Ordering::Relaxed);
        Self
    }
}

impl Drop for OpenRecorder {
    fn drop(&mut self) {
        OPEN_RECORDERS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many participant recorders are still writing.
pub(crate) fn open_recorders() -> usize {
    OPEN_RECORDERS.load(Ordering::Relaxed)
}

impl Recorder {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = loop {
            let step = tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Publish(p)) => self.publish(p),
                    Some(Command::Unpublish(id)) => { self.unpublish(&id); Ok(()) }
                    None => break Ok(()),
                },
                Some((track, delivery)) = next_delivery(&mut self.taps) => {
                    self.on_delivery(track, delivery);
                    Ok(())
                }
                _ = tick.tick() => Ok(()),
            };
            if let Err(e) = step.and_then(|()| self.advance()) {
                break Err(e);
            }
        };
        let result = result.and_then(|()| self.close());
        for tap in self.taps.iter().flatten() {
            tap.stop();
        }
        if let Err(error) = result {
            self.fail(error);
        }
    }

    fn publish(&mut self, publication: Arc<Publication>) -> Result<(), RecordError> {
        let Some(track) = track_of(&publication) else {
            return Ok(());
        };
        if self.taps[track as usize].is_some() || self.timeline.is_open() {
            if self.taps[track as usize].is_some() && !self.timeline.is_open() {
                return Ok(()); // a second camera, say: the first one is recorded
            }
            // A track the open file cannot take: close it and start the next file.
            self.close()?;
            let others: Vec<Arc<Publication>> = self
                .taps
                .iter_mut()
                .filter_map(Option::take)
                .map(|t| {
                    t.stop();
                    t.publication
                })
                .collect();
            self.timeline = Timeline::new(90_000, 48_000, Instant::now());
            for p in others.into_iter().filter(|p| track_of(p) != Some(track)) {
                self.tap(p);
            }
        }
        self.tap(publication);
        Ok(())
    }

    fn tap(&mut self, publication: Arc<Publication>) {
        let Some(track) = track_of(&publication) else {
            return;
        };
        tracing::debug!(publication = %publication.id, ?track, "recording a track");
        self.timeline.set_tapped(track, true);
        self.taps[track as usize] = Some(Tap::start(publication));
    }

    fn unpublish(&mut self, id: &str) {
        for (i, slot) in self.taps.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|t| t.publication.id == id) {
                if let Some(tap) = slot.take() {
                    tap.stop();
                }
                self.timeline.set_tapped(Track::BOTH[i], false);
            }
        }
    }

    fn on_delivery(&mut self, track: Track, ingress: Arc<Ingress>) {
        let now = Instant::now();
        let Some(tap) = self.taps[track as usize].as_mut() else {
            return;
        };
        if tap.switches_here(&ingress, self.timeline.is_open()) {
            tap.switch_to(ingress.info.layer);
            self.timeline.restart_track(track);
        }
        let Some(layer) = tap.layer.filter(|&l| l == ingress.info.layer) else {
            return;
        };
        if tap.reports.is_none() {
            tap.reports = tap.publication.sender_reports(layer);
        }
        if let Some((report, arrived_ms)) = tap.reports.as_ref().and_then(|r| r.load()) {
            if tap.last_report != Some(report) {
                tap.last_report = Some(report);
                // When it arrived, not when this tap first looks: a report may be seconds old.
                let age = millis_since_epoch(now).saturating_sub(arrived_ms);
                let arrived = now.checked_sub(Duration::from_millis(age)).unwrap_or(now);
                self.timeline
                    .on_sender_report(track, report.0, report.1, arrived);
            }
        }
        let header = &ingress.packet.header;
        tap.assembler.push(
            header.sequence_number,
            header.timestamp,
            header.marker,
            ingress.packet.payload.clone(),
            now,
        );
    }

    /// Moves frames from the assemblers to the file.
    fn advance(&mut self) -> Result<(), RecordError> {
        let now = Instant::now();
        for (i, slot) in self.taps.iter_mut().enumerate() {
            let Some(tap) = slot.as_mut() else { continue };
            while let Some(frame) = tap.assembler.pop(now) {
                self.timeline.push(Track::BOTH[i], frame, now);
            }
            if tap.assembler.take_keyframe_request() {
                let layer = tap
                    .layer
                    .unwrap_or(tap.publication.layer_count.saturating_sub(1));
                tap.publication.request_keyframe(layer);
            }
            // A layer it cannot move to before the file starts is not worth a keyframe yet.
            if tap.layer.is_none() || self.timeline.is_open() {
                tap.look_for_layer(now);
            }
        }
        let steps = self.timeline.poll(now);
        self.apply(steps)?;
        if now.duration_since(self.last_flush) >= FLUSH_EVERY {
            self.last_flush = now;
            self.flush(now)?;
        }
        Ok(())
    }

    fn apply(&mut self, steps: Vec<Step>) -> Result<(), RecordError> {
        for step in steps {
            match step {
                Step::Open { video, audio } => self.open(video, audio)?,
                Step::Write {
                    track,
                    nanos,
                    keyframe,
                    data,
                } => {
                    if let Some((file, meta)) = self.file.as_mut() {
                        file.write(track, nanos, keyframe, &data)?;
                        meta.duration_ms = meta.duration_ms.max(nanos / 1_000_000);
                    }
                }
            }
        }
        Ok(())
    }

    fn open(&mut self, video: Option<(u16, u16)>, audio: bool) -> Result<(), RecordError> {
        let catalog = &self.settings.catalog;
        std::fs::create_dir_all(catalog.dir()).map_err(RecordError::Io)?;
        let started_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let participant = self.settings.info.id.as_str().to_owned();
        let id = format!("{started_ms}-{participant}");
        let mut kinds = Vec::new();
        if video.is_some() {
            kinds.push("video".to_owned());
        }
        if audio {
            kinds.push("audio".to_owned());
        }
        let meta = Meta {
            id: id.clone(),
            room: self.settings.room.clone(),
            participant,
            name: self.settings.info.name.as_str().to_owned(),
            kinds,
            started_ms,
            duration_ms: 0,
            state: "recording",
            error: None,
        };
        catalog.write_meta(&meta).map_err(RecordError::Io)?;
        let file = WebmFile::create(&catalog.media_path(&id), video, audio);
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                self.file = None;
                let _ = catalog.write_meta(&Meta {
                    state: "failed",
                    error: Some(e.to_string()),
                    ..meta
                });
                return Err(e);
            }
        };
        tracing::info!(id, ?video, audio, "recording file started");
        self.file = Some((file, meta));
        Ok(())
    }

    fn flush(&mut self, _now: Instant) -> Result<(), RecordError> {
        let Some((file, meta)) = self.file.as_mut() else {
            return Ok(());
        };
        file.flush()?;
        self.settings
            .catalog
            .write_meta(meta)
            .map_err(RecordError::Io)
    }

    /// Writes what is held and closes the file.
    fn close(&mut self) -> Result<(), RecordError> {
        let steps = self.timeline.finish(Instant::now());
        self.apply(steps)?;
        let Some((file, mut meta)) = self.file.take() else {
            return Ok(());
        };
        let duration = Duration::from_millis(meta.duration_ms);
        let result = file.finish(duration);
        meta.state = if result.is_ok() { "complete" } else { "failed" };
        meta.error = result.as_ref().err().map(ToString::to_string);
        let _ = self.settings.catalog.write_meta(&meta);
        let lost: u64 = self
            .taps
            .iter()
            .flatten()
            .map(|t| t.assembler.lost_frames())
            .sum();
        tracing::info!(
            id = meta.id,
            duration_ms = meta.duration_ms,
            lost_frames = lost,
            "recording file ended"
        );
        result
    }

    fn fail(&mut self, error: RecordError) {
        if let Some((_, meta)) = self.file.take() {
            let _ = self.settings.catalog.write_meta(&Meta {
                state: "failed",
                error: Some(error.to_string()),
                ..meta
            });
        }
        let _ = self
            .failures
            .send((self.settings.info.id.as_str().to_owned(), error));
    }
}

/// The next packet of either tap.
async fn next_delivery(taps: &mut [Option<Tap>; 2]) -> Option<(Track, Arc<Ingress>)> {
    let [video, audio] = taps;
    tokio::select! {
        Some(d) = async { video.as_mut()?.packets.recv().await }, if video.is_some() => Some((Track::Video, d)),
        Some(d) = async { audio.as_mut()?.packets.recv().await }, if audio.is_some() => Some((Track::Audio, d)),
        else => None,
    }
}

#[cfg(test)]
mod tests {
    use super::switches;

    const KEYFRAME: bool = true;
    const DELTA: bool = false;
    const OPEN: bool = true;
    const WAITING: bool = false;

    #[test]
    fn the_first_keyframe_of_any_layer_starts_the_recording() {
        assert!(switches(None, Some(2), WAITING, (0, KEYFRAME), || false));
        assert!(!switches(None, Some(2), WAITING, (0, DELTA), || true));
    }

    #[test]
    fn before_the_file_starts_the_recording_stays_on_its_first_layer() {
        // The held frames of layer 0 would be dropped for layer 2's keyframe.
        assert!(!switches(Some(0), Some(2), WAITING, (2, KEYFRAME), || true));
    }

    #[test]
    fn once_the_file_runs_it_moves_to_the_wanted_layer_at_a_keyframe_with_a_report() {
        assert!(switches(Some(0), Some(2), OPEN, (2, KEYFRAME), || true));
        assert!(
            !switches(Some(0), Some(2), OPEN, (2, KEYFRAME), || false),
            "no report yet"
        );
        assert!(!switches(Some(0), Some(2), OPEN, (2, DELTA), || true));
        assert!(
            !switches(Some(0), Some(2), OPEN, (1, KEYFRAME), || true),
            "not the wanted one"
        );
        assert!(
            !switches(Some(2), Some(2), OPEN, (2, KEYFRAME), || true),
            "already there"
        );
    }
}
