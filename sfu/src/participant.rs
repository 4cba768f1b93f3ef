//! A participant: the one owner of a client's PeerConnection, its negotiation state and its
//! subscriptions. A task driven by three inboxes (the client's signals, the room's commands and
//! the connection's events), so no state here is shared or locked.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::Instrument;

use crate::allocation::{Decision, PauseReason, Priority, VideoDemand};
use crate::data::gate::DataGate;
use crate::data::relay;
use crate::downlink::{Downlink, AUDIO_RESERVE_BPS};
use crate::limits::Seat;
use crate::negotiation::{ClientOffer, Negotiation};
use crate::peer::{MediaKind, OpenedChannel, Peer, PeerEvent, RemoteTrack, TransportEvent};
use crate::presence::Presence;
use crate::publication::{LayerSource, Publication};
use crate::room::{Room, RoomCommand};
use crate::sfu::SfuInner;
use crate::stats::ConnectionState;
use crate::subscription::{Parked, Subscription};
use crate::{
    Description, ForwardedTrack, Grants, IceCandidate, LeaveReason, ParticipantId, ParticipantInfo,
    ServerEvent, Signal, SignalError, Source, TrackSettings,
};

/// Signals a client may have in flight before the edge waits.
const SIGNAL_QUEUE: usize = 64;

/// How often the layers a participant receives are reconsidered.
const ALLOCATION_INTERVAL: Duration = Duration::from_millis(250);

/// The edge's way to talk to a participant. Dropping it leaves the room.
pub struct ParticipantHandle {
    id: ParticipantId,
    signals: mpsc::Sender<Signal>,
}

impl ParticipantHandle {
    pub fn id(&self) -> &ParticipantId {
        &self.id
    }

    /// Hands the participant a client signal, without waiting: the participant waits for room on
    /// its bounded event queue, so a caller that waited here for room in the signal queue could
    /// wait forever on a participant waiting for it.
    pub fn signal(&self, signal: Signal) -> Result<(), SignalRefused> {
        self.signals.try_send(signal).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SignalRefused::Busy,
            mpsc::error::TrySendError::Closed(_) => SignalRefused::Gone,
        })
    }
}

/// Why a signal was not handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalRefused {
    /// The participant has [`SIGNAL_QUEUE`] signals still to handle.
    Busy,
    /// The participant has ended.
    Gone,
}

/// Where a participant sits and what it may do there.
pub(crate) struct Membership {
    pub(crate) room: Arc<Room>,
    pub(crate) grants: Grants,
    /// Held for the participant's whole life: the server-wide count drops when it is gone.
    pub(crate) seat: Seat,
}

/// What the room and the connection send a participant.
pub(crate) struct Inboxes {
    pub(crate) commands: mpsc::UnboundedReceiver<RoomCommand>,
    pub(crate) peer_events: mpsc::UnboundedReceiver<PeerEvent>,
    pub(crate) transport: mpsc::UnboundedReceiver<TransportEvent>,
    /// Data channel messages for this participant, waiting for its channel to open.
    pub(crate) data: mpsc::Receiver<Arc<str>>,
}

pub(crate) struct Participant {
    info: ParticipantInfo,
    room: Arc<Room>,
    grants: Grants,
    _seat: Seat,
    sfu: Arc<SfuInner>,
    presence: Arc<Presence>,
    peer: Peer,
    events: mpsc::Sender<ServerEvent>,
    negotiation: Negotiation,
    subscriptions: Vec<Subscription>,
    /// Tracks of ended subscriptions, each with the number of server offers sent when it was
    /// parked: it is reused once an offer that shows it inactive has been answered (reusing it
    /// sooner would change which stream an active m-section carries, and browsers then fire no
    /// track event).
    parked: Vec<(Parked, u64)>,
    downlink: Downlink,
    publications: Vec<Arc<Publication>>,
    /// Handed to each publication, which reports its id here when its track has ended.
    ended: mpsc::UnboundedSender<String>,
    /// Who holds the floor in the room: their video is served before the rest.
    dominant: Option<ParticipantId>,
    published: usize,
    /// What the client's last offer said its media sections carry (mid → source).
    sources: HashMap<String, Source>,
    candidates: usize,
    /// The outbox of data channel messages, until the channel opens and takes it.
    data_outbox: Option<mpsc::Receiver<Arc<str>>>,
    /// Since when the media connection has been disconnected, if it is.
    disconnected_since: Option<tokio::time::Instant>,
    /// The connection stopped answering (see [`SignalError::Unresponsive`]): the participant
    /// leaves, and its client joins again on a fresh one.
    wedged: bool,
}

impl Participant {
    pub(crate) fn spawn(
        info: ParticipantInfo,
        membership: Membership,
        sfu: Arc<SfuInner>,
        presence: Arc<Presence>,
        peer: Peer,
        events: mpsc::Sender<ServerEvent>,
        inboxes: Inboxes,
    ) -> ParticipantHandle {
        let Membership { room, grants, seat } = membership;
        let (signals_tx, signals) = mpsc::channel(SIGNAL_QUEUE);
        let handle = ParticipantHandle {
            id: info.id.clone(),
            signals: signals_tx,
        };
        let span = tracing::info_span!("participant", room = %room.id, participant = %info.id);
        let (ended, ended_rx) = mpsc::unbounded_channel();
        let participant = Participant {
            info,
            room,
            grants,
            _seat: seat,
            sfu,
            presence,
            peer,
            events,
            negotiation: Negotiation::default(),
            subscriptions: Vec::new(),
            parked: Vec::new(),
            downlink: Downlink::new(),
            publications: Vec::new(),
            ended,
            dominant: None,
            published: 0,
            sources: HashMap::new(),
            candidates: 0,
            data_outbox: None,
            disconnected_since: None,
            wedged: false,
        };
        tokio::spawn(participant.run(signals, inboxes, ended_rx).instrument(span));
        handle
    }

    async fn run(
        mut self,
        mut signals: mpsc::Receiver<Signal>,
        inboxes: Inboxes,
        mut ended: mpsc::UnboundedReceiver<String>,
    ) {
        let Inboxes {
            mut commands,
            mut peer_events,
            mut transport,
            data,
        } = inboxes;
        self.data_outbox = Some(data);
        tracing::info!(name = self.info.name.as_str(), "joined");
        let mut allocation = tokio::time::interval(ALLOCATION_INTERVAL);
        allocation.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A seat is held only by someone who sets up media: the ICE timeouts start only once
        // there is an offer, so the first offer and answer have a deadline of their own.
        let negotiation_deadline = tokio::time::sleep(self.sfu.config.peer_timeout);
        tokio::pin!(negotiation_deadline);
        // webrtc-rs declares a silent connection failed after the ICE timeouts; this is the
        // backstop for when it does not (seen when a client vanished during the data channel's
        // SCTP handshake: the connection stayed "disconnected").
        let silence_deadline = tokio::time::sleep(self.sfu.config.peer_timeout);
        tokio::pin!(silence_deadline);
        // The handlers that await webrtc-rs (offer, answer, subscribe, leave) run as boxed
        // futures: inline, the largest of them would size this task's future, held for the
        // participant's whole life, where a box lives only while its handler runs.
        let reason = loop {
            if self.wedged {
                tracing::warn!("the media connection stopped responding");
                break LeaveReason::PeerFailed;
            }
            if let Some(since) = self.disconnected_since {
                silence_deadline
                    .as_mut()
                    .reset(since + 2 * self.sfu.config.peer_timeout);
            }
            tokio::select! {
                _ = &mut negotiation_deadline, if !self.negotiation.started() => {
                    break LeaveReason::NegotiationTimeout;
                }
                _ = &mut silence_deadline, if self.disconnected_since.is_some() => {
                    tracing::warn!("media connection disconnected too long without failing");
                    break LeaveReason::PeerFailed;
                }
                _ = allocation.tick() => self.allocate(),
                signal = signals.recv() => match signal {
                    None | Some(Signal::Leave) => break LeaveReason::Requested,
                    Some(signal) => Box::pin(self.on_signal(signal)).await,
                },
                Some(command) = commands.recv() => {
                    if let RoomCommand::Remove(reason) = command {
                        break reason;
                    }
                    Box::pin(self.on_room(command)).await;
                }
                Some(event) = peer_events.recv() => {
                    if let Some(reason) = self.on_peer(event) {
                        break reason;
                    }
                }
                Some(event) = transport.recv() => self.downlink.on_transport(Instant::now(), event),
                Some(publication) = ended.recv() => self.unpublish(&publication),
            }
            if self.negotiation.should_offer(self.peer.is_stable()) {
                Box::pin(self.offer()).await;
            }
        };
        Box::pin(self.leave(reason)).await;
    }

    async fn on_signal(&mut self, signal: Signal) {
        let result = match signal {
            Signal::Offer { sdp, sources } => {
                self.sources = sources.into_iter().collect();
                self.on_offer(sdp).await
            }
            Signal::Answer(sdp) => self.on_answer(sdp).await,
            Signal::Candidate(Some(candidate)) => self.on_candidate(candidate).await,
            Signal::TrackSettings(settings) => self.on_track_settings(settings),
            Signal::Mute { kind, muted } => {
                self.mute(kind, muted);
                Ok(())
            }
            Signal::Candidate(None) | Signal::Leave => Ok(()),
        };
        match result {
            Err(SignalError::Unresponsive) => self.wedged = true,
            // The edge logs the refusal when it tells the client.
            Err(error) => self.send(ServerEvent::Error(error)).await,
            Ok(()) => {}
        }
    }

    /// Records how the client shows a track and reallocates at once, so a hidden tile stops
    /// costing bandwidth now and a shown one starts its video without waiting for the next round.
    fn on_track_settings(&mut self, settings: TrackSettings) -> Result<(), SignalError> {
        let Some(subscription) = self
            .subscriptions
            .iter_mut()
            .find(|s| s.publication().id == settings.track)
        else {
            return Err(SignalError::UnknownTrack(settings.track));
        };
        subscription.settings = settings;
        self.allocate();
        Ok(())
    }

    /// Stops (or resumes) forwarding what this participant publishes of `kind`, now and for
    /// whatever it publishes of that kind later, and tells the room.
    fn mute(&mut self, kind: MediaKind, muted: bool) {
        let flag = match kind {
            MediaKind::Audio => &mut self.info.audio_muted,
            MediaKind::Video => &mut self.info.video_muted,
        };
        if *flag == muted {
            return;
        }
        *flag = muted;
        for publication in self.publications.iter().filter(|p| p.kind == kind) {
            publication.set_muted(muted);
        }
        tracing::info!(kind = kind.as_str(), muted, "mute");
        self.room.update(&self.info);
    }

    /// Tells the room what this participant publishes, when that changed.
    fn publishes_changed(&mut self) {
        let mut publishes: Vec<Source> = self.publications.iter().map(|p| p.source).collect();
        publishes.sort();
        publishes.dedup();
        if publishes != self.info.publishes {
            self.info.publishes = publishes;
            self.room.update(&self.info);
        }
    }

    async fn on_candidate(&mut self, candidate: IceCandidate) -> Result<(), SignalError> {
        let max = self.sfu.config.limits.max_candidates;
        if self.candidates >= max {
            return Err(SignalError::TooManyCandidates(max));
        }
        self.candidates += 1;
        self.peer.add_candidate(candidate).await
    }

    fn check_sdp_size(&self, sdp: &str) -> Result<(), SignalError> {
        let max = self.sfu.config.limits.max_sdp_bytes;
        if sdp.len() > max {
            return Err(SignalError::SdpTooLarge {
                size: sdp.len(),
                max,
            });
        }
        Ok(())
    }

    async fn on_offer(&mut self, sdp: String) -> Result<(), SignalError> {
        self.check_sdp_size(&sdp)?;
        tracing::trace!(%sdp, "client offer");
        if self.negotiation.on_client_offer() == ClientOffer::IgnoreGlare {
            tracing::debug!("glare: keeping the server's offer, the client rolls back");
            return Ok(());
        }
        let answer = self.peer.answer(sdp, self.grants.publish).await?;
        self.negotiation.client_offer_answered();
        let answer = self.describe(answer);
        self.send(ServerEvent::Answer(answer)).await;
        self.unpublish_stopped().await;
        Ok(())
    }

    /// Unpublishes the tracks whose media section the client no longer sends on. Their streams
    /// stay open (webrtc-rs only pauses a receiver whose SSRC is still declared), so this, not
    /// the end of the stream, is how a removed track is noticed.
    async fn unpublish_stopped(&mut self) {
        let receiving = self.peer.receiving_mids().await;
        let stopped: Vec<String> = self
            .publications
            .iter()
            .filter(|p| !p.mid.is_empty() && !receiving.contains(&p.mid))
            .map(|p| p.id.clone())
            .collect();
        if !stopped.is_empty() {
            // Says what the negotiation left, for the case where a publisher keeps sending on
            // a media section found stopped (seen once in a browser test; see the closing note
            // of 2026-12-02).
            tracing::info!(
                ?stopped,
                ?receiving,
                "media sections the client no longer sends on"
            );
        }
        for id in stopped {
            self.unpublish(&id);
        }
    }

    async fn on_answer(&mut self, sdp: String) -> Result<(), SignalError> {
        self.check_sdp_size(&sdp)?;
        tracing::trace!(%sdp, "client answer");
        if !self.negotiation.on_client_answer() {
            return Err(SignalError::WrongState(
                "answer without an outstanding offer",
            ));
        }
        let applied = self.peer.accept_answer(sdp).await;
        if applied.is_err() {
            // The offer is still out: a corrected answer may follow.
            self.negotiation.answer_failed();
        } else {
            // A client that stopped a track while our offer crossed its own sends the change in
            // its answer.
            self.unpublish_stopped().await;
        }
        applied
    }

    async fn on_room(&mut self, command: RoomCommand) {
        match command {
            RoomCommand::PeerJoined(info) => self.send(ServerEvent::ParticipantJoined(info)).await,
            RoomCommand::PeerUpdated(info) => {
                self.send(ServerEvent::ParticipantUpdated(info)).await
            }
            RoomCommand::PeerLeft(id) => self.send(ServerEvent::ParticipantLeft(id)).await,
            RoomCommand::Subscribe(publication) => self.subscribe(publication).await,
            RoomCommand::Unsubscribe(publication_id) => self.unsubscribe(&publication_id).await,
            RoomCommand::Speakers { speakers, dominant } => {
                if dominant != self.dominant {
                    self.dominant = dominant;
                    self.allocate();
                }
                self.send(ServerEvent::Speakers(speakers)).await;
            }
            RoomCommand::Recording(active) => self.send(ServerEvent::Recording(active)).await,
            RoomCommand::Remove(_) => {}
        }
    }

    async fn subscribe(&mut self, publication: Arc<Publication>) {
        if !self.grants.subscribe {
            return;
        }
        let id = publication.id.clone();
        let counters = Arc::clone(&self.sfu.counters);
        let parked = self.take_parked(publication.kind);
        match Subscription::start(&self.peer, Arc::clone(&publication), counters, parked).await {
            Ok(subscription) => {
                tracing::debug!(publication = %id, "subscribed");
                self.presence
                    .add_forwarded(publication, Arc::clone(&subscription.stats));
                self.subscriptions.push(subscription);
                self.negotiation.tracks_changed();
                // Its first layer is the allocator's, not a guess the allocator corrects later
                // at the cost of a second keyframe.
                self.allocate();
            }
            Err(error) => tracing::warn!(publication = %id, %error, "could not subscribe"),
        }
    }

    async fn unsubscribe(&mut self, publication_id: &str) {
        let Some(pos) = self
            .subscriptions
            .iter()
            .position(|s| s.publication().id == publication_id)
        else {
            return;
        };
        self.presence.remove_forwarded(publication_id);
        let subscription = self.subscriptions.swap_remove(pos);
        self.downlink.forget(subscription.id());
        let parked = subscription.stop(&self.peer).await;
        self.parked.push((parked, self.negotiation.offers_sent()));
        tracing::debug!(publication = %publication_id, "unsubscribed");
        self.negotiation.tracks_changed();
    }

    /// A parked track of `kind` the client already knows to be inactive, if there is one.
    fn take_parked(&mut self, kind: MediaKind) -> Option<Parked> {
        let pos = self.parked.iter().position(|(parked, since)| {
            parked.kind() == kind && self.negotiation.settled_since(*since)
        })?;
        Some(self.parked.swap_remove(pos).0)
    }

    /// One of this participant's tracks ended (its stream closed, or its client stopped sending
    /// it): no one receives it any more, and no one who joins later will.
    fn unpublish(&mut self, publication_id: &str) {
        let Some(pos) = self
            .publications
            .iter()
            .position(|p| p.id == publication_id)
        else {
            return;
        };
        self.publications.swap_remove(pos);
        self.room.unpublish(&self.info.id, publication_id);
        tracing::info!(track = %publication_id, "unpublished");
        self.publishes_changed();
    }

    /// Returns why the participant must leave, if it must.
    fn on_peer(&mut self, event: PeerEvent) -> Option<LeaveReason> {
        match event {
            PeerEvent::LocalCandidate(candidate) => {
                self.queue_candidate(candidate);
                None
            }
            PeerEvent::SelectedPair(local, remote) => {
                tracing::info!(local = %local, remote = %remote, "selected candidate pair");
                self.presence.set_candidate_pair(local, remote);
                None
            }
            PeerEvent::Connection(state) => {
                tracing::info!(state = state.as_str(), "connection state");
                self.presence.set_connection(state);
                self.disconnected_since = (state == ConnectionState::Disconnected).then(|| {
                    self.disconnected_since
                        .unwrap_or_else(tokio::time::Instant::now)
                });
                matches!(state, ConnectionState::Failed | ConnectionState::Closed)
                    .then_some(LeaveReason::PeerFailed)
            }
            PeerEvent::Track(track) => {
                self.publish(track);
                None
            }
            PeerEvent::DataChannel(opened) => {
                self.open_data(opened);
                None
            }
        }
    }

    /// Relays what the client writes on its `data` channel to the room, and what the room has
    /// for it back to the channel.
    fn open_data(&mut self, opened: OpenedChannel) {
        let rate = self.sfu.config.limits.data_messages_per_second;
        let reader = relay::Reader {
            id: self.info.id.clone(),
            gate: DataGate::new(
                self.info.id.clone(),
                self.grants.publish,
                rate,
                Instant::now(),
            ),
            room: Arc::downgrade(&self.room),
            events: self.events.clone(),
            counters: Arc::clone(&self.sfu.counters),
        };
        relay::start(opened, self.data_outbox.take(), &self.room, reader);
    }

    fn queue_candidate(&self, candidate: Option<IceCandidate>) {
        // try_send keeps on_peer synchronous; a client too slow to take its candidates is gone anyway.
        let _ = self.events.try_send(ServerEvent::Candidate(candidate));
    }

    /// Shares the downlink estimate among the video this participant receives, and tells each
    /// forwarder its layer (or to pause).
    fn allocate(&mut self) {
        let now = Instant::now();
        let mut audio_bps = 0;
        let mut video = Vec::new();
        for subscription in &self.subscriptions {
            let publication = subscription.publication();
            match publication.kind {
                MediaKind::Audio if publication.is_muted() => {}
                MediaKind::Audio => audio_bps += publication.bitrate().max(AUDIO_RESERVE_BPS),
                MediaKind::Video => video.push(VideoDemand {
                    track: subscription.id(),
                    priority: if publication.source == Source::Screen {
                        Priority::Screen
                    } else if Some(&publication.publisher) == self.dominant.as_ref() {
                        Priority::Speaker
                    } else {
                        Priority::Normal
                    },
                    tile: subscription.settings.size,
                    // A muted camera sends nothing: it is paused like a hidden tile, and resumed
                    // at once when unmuted.
                    visible: subscription.settings.visible && !publication.is_muted(),
                    layers: publication.allocation_layers(),
                }),
            }
        }
        let allocation = self.downlink.allocate(now, audio_bps, &video);
        for (track, decision) in allocation.decisions {
            let Some(subscription) = self.subscriptions.iter().find(|s| s.id() == track) else {
                continue;
            };
            match decision {
                Decision::Forward(layer) => subscription.set_target(Some(layer)),
                Decision::Paused(PauseReason::NoBandwidth | PauseReason::Hidden) => {
                    subscription.set_target(None)
                }
                // Nothing flows to forward; the forwarder keeps waiting where it is.
                Decision::Paused(PauseReason::NoLayers) => {}
            }
        }
        if !self.subscriptions.is_empty() {
            self.presence.set_downlink(self.downlink.estimate_bps());
        }
    }

    fn publish(&mut self, track: RemoteTrack) {
        if !self.grants.publish {
            // Its sections were answered inactive, so this should not happen; should a client
            // send anyway, nothing reads the track, so nothing of it is forwarded or kept.
            tracing::info!(
                kind = track.kind().as_str(),
                "not allowed to publish: track ignored"
            );
            return;
        }
        let keyframes = self.peer.keyframe_requester(track.ssrc());
        let (layer, layers) = track.layer();
        let sibling = self.publications.iter().find(|p| {
            layers > 1
                && !p.mid.is_empty()
                && p.mid == track.mid()
                && p.kind == track.kind()
                && p.is_live()
        });
        if let Some(publication) = sibling {
            tracing::info!(track = %publication.id, rid = track.rid(), layer, "simulcast layer");
            publication.add_layer(LayerSource { track, keyframes });
            return;
        }
        self.published += 1;
        let id = format!("{}-{}", self.info.id, self.published);
        tracing::info!(track = %id, kind = track.kind().as_str(), codec = track.codec().mime_type(), rid = track.rid(), layer, layers, "publishing");
        let counters = Arc::clone(&self.sfu.counters);
        let ended = self.ended.clone();
        let kind = track.kind();
        let source = self
            .sources
            .get(track.mid())
            .copied()
            .filter(|s| s.fits(kind))
            .unwrap_or(Source::default_for(kind));
        let publisher = self.info.id.clone();
        let publication = Publication::new(id, publisher, &track, source, counters, ended);
        publication.set_muted(match publication.kind {
            MediaKind::Audio => self.info.audio_muted,
            MediaKind::Video => self.info.video_muted,
        });
        publication.add_layer(LayerSource { track, keyframes });
        self.publications.push(Arc::clone(&publication));
        self.room.publish(&self.info.id, publication);
        self.publishes_changed();
    }

    async fn offer(&mut self) {
        match self.peer.offer().await {
            Ok(sdp) => {
                tracing::trace!(%sdp, "server offer");
                self.negotiation.offer_sent();
                let offer = self.describe(sdp);
                self.send(ServerEvent::Offer(offer)).await;
            }
            Err(SignalError::Unresponsive) => self.wedged = true,
            Err(error) => tracing::warn!(%error, "could not create an offer"),
        }
    }

    /// A description with what each forwarded media section in it carries.
    fn describe(&self, sdp: String) -> Description {
        let tracks = self
            .subscriptions
            .iter()
            .filter_map(|s| {
                let publication = s.publication();
                Some(ForwardedTrack {
                    mid: s.mid()?,
                    track: publication.id.clone(),
                    participant: publication.publisher.clone(),
                    kind: publication.kind.as_str(),
                    source: publication.source,
                })
            })
            .collect();
        Description { sdp, tracks }
    }

    /// The one way out, however the participant goes.
    async fn leave(mut self, reason: LeaveReason) {
        if self.room.remove(&self.info.id) {
            self.sfu.forget_room(&self.room);
            tracing::info!("room closed: last participant left");
        }
        self.subscriptions.clear();
        self.peer.close().await;
        tracing::info!(?reason, "left");
        self.send(ServerEvent::Left(reason)).await;
    }

    async fn send(&self, event: ServerEvent) {
        let _ = self.events.send(event).await;
    }
}
