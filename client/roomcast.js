// roomcast client library: a roomcast room in any page. One ES module, no dependencies, no build
// step; documented in docs/client-sdk.md, spoken over docs/protocol.md.
//
// A RoomcastClient holds one WebSocket to the server and one RTCPeerConnection, and says what
// happens through events (`client.on('track', ({ participant, track }) => …)`). It is the polite
// peer: on glare it rolls back its own offer and answers the server's. It reconnects by itself:
// a lost WebSocket joins again after 1, 2, 4… s, a dead media path restarts ICE first.

// Three VP8 layers (quarter, half and full resolution); the server forwards each subscriber the
// one that fits its downlink and the size it shows the video at.
const SIMULCAST = [{ rid: 'q', scaleResolutionDownBy: 4 }, { rid: 'h', scaleResolutionDownBy: 2 }, { rid: 'f' }];
const RECONNECT_TRIES = 10;

export class RoomcastClient extends EventTarget {
  // url: the signaling WebSocket (default: this page's server, /ws); token: a room token;
  // relayOnly: media through TURN only; simulcast: publish a camera of 360p or more as three layers.
  constructor({ url, token = null, relayOnly = false, simulcast = true } = {}) {
    super();
    this.url = url || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    Object.assign(this, { token, relayOnly, simulcast });
    this.ws = null;
    this.pc = null;
    this.data = null; // the `data` channel
    this.localStream = null;
    this.selfId = null;
    this.room = null;
    this.participants = new Map(); // id -> participant object (docs/protocol.md)
    this.forwarded = new Map(); // mid -> { participant, track, kind, source }: what the server sends on it
    this.speakers = []; // [{ id, level }], the dominant speaker first
    this.muted = { audio: false, video: false };
    this.screen = null; // { sender, track } while sharing a screen
    this.recording = false;
    this.reconnects = 0;
    this.relayCandidates = 0;
    this.iceErrors = [];
    this.selectedPair = null;
    this.trackSettings = new Map(); // track id -> the last settings sent
  }

  // Listens to an event; the handler gets the event's detail.
  on(type, handler) {
    this.addEventListener(type, (e) => handler(e.detail));
    return this;
  }

  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  log(...args) { this.emit('log', { text: args.join(' ') }); }
  status(state, text) { this.emit('status', { state, text }); }
  notice(text) { this.emit('notice', { text }); }

  // Joins `room` as `name`, publishing `stream` (a MediaStream, empty for a viewer).
  join(room, { name = '', stream = new MediaStream() } = {}) {
    Object.assign(this, { room, name, localStream: stream, reconnects: 0 });
    this.connect();
  }

  leave() {
    this.send({ type: 'leave' });
    this.end('Left the room', 'idle');
  }

  send(message) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  // Writes `payload` (any JSON) on the data channel, to everyone else in the room or to the
  // participant ids in `to`. False when the channel is not open.
  sendData(payload, to) {
    if (this.data?.readyState !== 'open') return false;
    this.data.send(JSON.stringify(to ? { payload, to } : { payload }));
    return true;
  }

  // Mutes or unmutes what this page publishes of one kind: the browser sends silence or black,
  // and the server forwards none of it.
  setMuted(kind, muted) {
    this.muted[kind] = muted;
    this.localStream?.getTracks().filter((t) => t.kind === kind).forEach((t) => { t.enabled = !muted; });
    this.send({ type: 'mute', kind, muted });
    this.emit('muted', { kind, muted });
  }

  // Tells the server how the page shows a forwarded video track: whether it can be seen, and its
  // size in device pixels (docs/protocol.md, track_settings). Sent only when it changed.
  setTrackSettings(track, { visible = true, width = 0, height = 0 } = {}) {
    const message = { type: 'track_settings', track, visible };
    if (width > 0 && height > 0) Object.assign(message, { width: Math.round(width), height: Math.round(height) });
    const key = JSON.stringify(message);
    if (this.trackSettings.get(track) === key) return;
    this.trackSettings.set(track, key);
    this.send(message);
  }

  // Shares a screen (or any video track given) as a second video track, shown to everyone as a
  // screen share. Ends when the browser's own "Stop sharing" ends the track, or on stopScreen().
  async shareScreen(given) {
    if (!this.pc || this.screen) return;
    const track = given || (await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false })).getVideoTracks()[0];
    // Its own transceiver: addTrack could take over an m-section the server forwards on.
    const { sender } = this.pc.addTransceiver(track, { direction: 'sendonly', streams: [new MediaStream([track])] });
    this.screen = { sender, track };
    track.addEventListener('ended', () => this.stopScreen());
    this.emit('screen', { sharing: true });
    this.log('sharing the screen');
  }

  stopScreen() {
    const screen = this.screen;
    if (!screen) return;
    this.screen = null;
    screen.track.stop();
    if (this.pc && this.pc.signalingState !== 'closed') this.pc.removeTrack(screen.sender);
    this.emit('screen', { sharing: false });
    this.log('stopped sharing the screen');
  }

  // Swaps the camera or microphone for another device in place (replaceTrack): no renegotiation,
  // the same simulcast layers. False if the device could not be opened.
  async switchDevice(kind, deviceId) {
    const old = this.localStream?.getTracks().find((t) => t.kind === kind);
    if (!old || old.getSettings().deviceId === deviceId) return true;
    const constraints = kind === 'video'
      ? { video: { ...(old.getConstraints() || {}), deviceId: { exact: deviceId } } }
      : { audio: { deviceId: { exact: deviceId } } };
    let track;
    try {
      [track] = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks();
    } catch (e) {
      this.notice(`That ${kind === 'video' ? 'camera' : 'microphone'} is unavailable: ${e.message}`);
      return false;
    }
    track.enabled = !this.muted[kind];
    track.addEventListener('ended', () => this.unpublish(kind));
    await this.pc?.getSenders().find((s) => s.track === old)?.replaceTrack(track);
    this.localStream.removeTrack(old);
    this.localStream.addTrack(track);
    old.stop();
    this.log('switched', kind, 'to', track.label);
    this.emit('local-stream', { stream: this.localStream });
    return true;
  }

  // Stops publishing one kind of media: the track ends and leaves the connection, and the server
  // unpublishes it for everyone.
  unpublish(kind) {
    for (const sender of this.pc?.getSenders() || []) {
      if (sender.track?.kind !== kind || sender === this.screen?.sender) continue;
      sender.track.stop();
      this.pc.removeTrack(sender);
      this.log('stopped publishing', kind);
    }
  }

  // An ICE restart keeps the session, its subscriptions and tiles: the next offer carries new
  // credentials, and the server restarts ICE on the same participant.
  restartIce(pc = this.pc) {
    if (!pc || this.pc !== pc || pc.connectionState === 'connected') return;
    this.log('restarting ICE');
    pc.restartIce();
  }

  connect() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.send({ type: 'join', room: this.room, name: this.name, ...(this.token ? { token: this.token } : {}) });
      this.emit('open');
    };
    // Messages are handled one at a time, in order: a candidate must not overtake its offer.
    let queue = Promise.resolve();
    ws.onmessage = (e) => {
      let message;
      try { message = JSON.parse(e.data); } catch { return this.log('bad message from server'); }
      queue = queue.then(() => this.handlers[message.type]?.call(this, message)).catch((err) => this.log(message.type, 'failed:', err));
    };
    // A WebSocket that closes without the page or the server ending the session (a network
    // change, a server restart, a proxy timeout) is opened again after 1, 2, 4… s (at most 10 s
    // apart, RECONNECT_TRIES tries), joining again with the same camera and microphone.
    ws.onclose = () => {
      if (this.ws !== ws) return; // the page or the server ended the session on purpose
      if (this.reconnects >= RECONNECT_TRIES) return this.end('Disconnected from server', 'error');
      this.reconnects += 1;
      this.dropSession();
      const delay = Math.min(10000, 1000 * 2 ** (this.reconnects - 1));
      this.notice(`The connection to the server was lost. Reconnecting (try ${this.reconnects} of ${RECONNECT_TRIES})…`);
      this.status('connecting', 'Reconnecting…');
      this.log('reconnecting in', delay, 'ms');
      this.emit('reconnecting', { attempt: this.reconnects, of: RECONNECT_TRIES, delay });
      this.reconnectTimer = setTimeout(() => { if (this.ws === ws) this.connect(); }, delay);
    };
  }

  // Ends the media session and forgets the others, keeping the page's own camera and microphone.
  dropSession() {
    this.pc?.close();
    this.pc = null;
    this.data = null;
    clearInterval(this.statsTimer);
    this.relayCandidates = 0;
    this.iceErrors = [];
    this.selectedPair = null;
    this.stopScreen();
    for (const id of [...this.participants.keys()]) this.removeParticipant(id);
    this.forwarded = new Map();
    this.trackSettings = new Map();
    this.selfId = null;
    this.setRecording(false);
  }

  // The session is over for good: says why, and lets go of the camera and microphone.
  end(text, state) {
    const ws = this.ws;
    this.ws = null;
    clearTimeout(this.reconnectTimer);
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close();
    this.dropSession();
    this.localStream?.getTracks().forEach((t) => t.stop());
    this.localStream = null;
    this.muted = { audio: false, video: false };
    this.status(state, text);
    this.emit('ended', { text, state });
  }

  addParticipant(info) {
    if (info.id === this.selfId) return;
    const known = this.participants.has(info.id);
    this.participants.set(info.id, { ...this.participants.get(info.id), ...info });
    this.emit('participant', { participant: this.participants.get(info.id), joined: !known });
  }

  removeParticipant(id) {
    if (!this.participants.delete(id)) return;
    this.emit('participant-left', { id });
  }

  setRecording(active) {
    if (this.recording === active) return;
    this.recording = active;
    this.emit('recording', { active });
  }

  createPeer(iceServers) {
    const config = { iceServers };
    if (this.relayOnly) config.iceTransportPolicy = 'relay';
    const pc = new RTCPeerConnection(config);
    pc.onicecandidate = ({ candidate }) => {
      if (candidate?.type === 'relay') this.relayCandidates += 1;
      this.send({ type: 'candidate', candidate: candidate ? candidate.toJSON() : null });
    };
    pc.onicecandidateerror = (e) => {
      this.iceErrors.push(`${e.url}: ${e.errorCode} ${e.errorText}`.trim().replace(/\.$/, ''));
      this.log('ICE candidate error', e.url, e.errorCode, e.errorText);
    };
    pc.onicegatheringstatechange = () => {
      if (pc.iceGatheringState === 'complete' && this.relayOnly && this.relayCandidates === 0) this.relayUnreachable(pc);
    };
    pc.onconnectionstatechange = () => this.onConnectionState(pc);
    pc.onnegotiationneeded = async () => {
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        this.send({ type: 'offer', sdp: pc.localDescription.sdp, sources: this.sources(pc) });
        this.emit('descriptions');
      } catch (e) {
        this.log('offer failed', e);
      } finally {
        this.makingOffer = false;
      }
    };
    for (const track of this.localStream.getTracks()) this.publish(pc, track);
    // A viewer publishes nothing, yet the server waits for the client's first offer before it
    // offers anything (docs/protocol.md, negotiation): one receive-only section makes that offer.
    if (!this.localStream.getTracks().length) pc.addTransceiver('audio', { direction: 'recvonly' });
    this.openData(pc);
    this.statsTimer = setInterval(() => this.findSelectedPair(pc).catch(() => {}), 2000);
    return pc;
  }

  // The one reliable, ordered `data` channel the server relays (docs/protocol.md, data channels).
  openData(pc) {
    const channel = pc.createDataChannel('data');
    channel.onmessage = (e) => {
      let message;
      try { message = JSON.parse(e.data); } catch { return this.log('bad data message'); }
      this.emit('data', { from: message.from, payload: message.payload });
    };
    channel.onopen = () => this.emit('data-open');
    this.data = channel;
  }

  onConnectionState(pc) {
    const s = pc.connectionState;
    this.log('connection', s);
    clearTimeout(this.iceRestartTimer);
    if (s === 'connected') { this.status('connected', `In room ${this.room}`); this.findSelectedPair(pc); }
    else if (s === 'failed') { this.status('connecting', 'Media connection failed, restarting it'); this.restartIce(pc); }
    else if (s === 'disconnected') {
      this.status('connecting', 'Media connection interrupted');
      // A changed network (Wi-Fi to cellular, a new address) rarely comes back by itself: after
      // 1 s, try fresh ICE credentials and candidates on the same session. Chromium says
      // "disconnected" ≈ 5 s into an outage, and the server gives up 10 s after it notices: the
      // restart has to land well inside that.
      this.iceRestartTimer = setTimeout(() => this.restartIce(pc), 1000);
    }
    this.emit('connection', { state: s });
  }

  relayUnreachable(pc) {
    const why = this.iceErrors.length ? ` (${this.iceErrors.join('; ')})` : '';
    const turn = pc.getConfiguration().iceServers.some((s) => [].concat(s.urls).some((u) => /^turns?:/.test(u)));
    this.notice(turn ? `The TURN relay could not be reached${why}. With "Relay only" no media can flow; try without it.`
      : 'Relay only was asked for, but the server offers no TURN relay. Try without "Relay only".');
    this.status('error', 'Relay unreachable');
  }

  async findSelectedPair(pc) {
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((r) => { if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
    if (!pair) stats.forEach((r) => { if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = pair || r; });
    if (!pair) return;
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    this.selectedPair = { local: local?.candidateType, remote: remote?.candidateType, protocol: local?.protocol };
    this.emit('selected-pair', {
      ...this.selectedPair,
      text: `${local?.candidateType} (${local?.protocol} ${local?.address}:${local?.port}) → server ${remote?.candidateType} (${remote?.address}:${remote?.port})`,
    });
  }

  publish(pc, track) {
    // A camera unplugged or a permission revoked ends the track: stop publishing it.
    track.addEventListener('ended', () => this.unpublish(track.kind));
    const layered = track.kind === 'video' && this.simulcast && (track.getSettings().height || 0) >= 360;
    if (!layered) return pc.addTrack(track, this.localStream);
    pc.addTransceiver(track, { direction: 'sendonly', streams: [this.localStream], sendEncodings: SIMULCAST });
    return null;
  }

  // What the offer says its media sections carry beyond what their kind tells: which one is a
  // shared screen (docs/protocol.md, offer).
  sources(pc) {
    const out = {};
    for (const t of pc.getTransceivers()) if (t.mid && this.screen && t.sender === this.screen.sender) out[t.mid] = 'screen';
    return out;
  }

  async onDescription(type, { sdp, tracks }) {
    const pc = this.pc;
    if (!pc) return;
    // Polite peer: an offer that collides with ours wins; setRemoteDescription rolls ours back.
    await pc.setRemoteDescription({ type, sdp });
    this.placeForwarded(pc, tracks);
    if (type === 'offer') {
      await pc.setLocalDescription();
      this.send({ type: 'answer', sdp: pc.localDescription.sdp });
    }
    this.emit('descriptions');
  }

  // Says whose each received track is. Every server offer and answer lists what each forwarded
  // media section carries: the server reuses the m-section of a track that ended for a later
  // one, and since an m-section's msid never changes, neither the browser's remote stream nor
  // the track's id says whose it is.
  placeForwarded(pc, tracks) {
    const now = new Map((tracks || []).map((t) => [t.mid, t]));
    for (const transceiver of pc.getTransceivers()) {
      const before = this.forwarded.get(transceiver.mid);
      const after = now.get(transceiver.mid);
      if (before?.track === after?.track) continue;
      const track = transceiver.receiver.track;
      if (before) this.emit('track-ended', { ...before, id: before.track, track });
      if (after) {
        // Media can overtake participant_joined; the participant gets its real name then.
        if (!this.participants.has(after.participant)) this.addParticipant({ id: after.participant, name: 'Guest', publishes: [] });
        this.emit('track', { ...after, id: after.track, track });
      }
    }
    this.forwarded = now;
  }
}

RoomcastClient.prototype.handlers = {
  joined(m) {
    if (this.reconnects) { this.notice(''); this.log('reconnected after', this.reconnects, 'tries'); }
    this.reconnects = 0;
    this.selfId = m.id;
    this.room = m.room;
    // A new session starts unmuted on the server: say again what this page keeps muted.
    for (const kind of ['audio', 'video']) if (this.muted[kind]) this.send({ type: 'mute', kind, muted: true });
    this.status('connecting', `Joined ${m.room}, connecting media…`);
    this.log('joined', m.room, 'as', m.id);
    this.emit('joined', { id: m.id, room: m.room });
    m.participants.forEach((p) => this.addParticipant(p));
    this.pc = this.createPeer(m.ice_servers);
  },
  participant_joined(m) { this.addParticipant(m.participant); this.log('joined:', m.participant.name); },
  participant_updated(m) {
    if (m.participant.id === this.selfId) return this.emit('self', { participant: m.participant });
    this.addParticipant(m.participant);
  },
  participant_left(m) { this.removeParticipant(m.id); this.log('left:', m.id); },
  speakers(m) {
    this.speakers = m.speakers;
    this.emit('speakers', { speakers: m.speakers });
  },
  recording(m) { this.setRecording(!!m.active); },
  full(m) {
    this.notice(`Room "${m.room}" is full (${m.capacity} participants). Try again later or pick another room.`);
    this.end('Room full', 'error');
  },
  offer(m) { return this.onDescription('offer', m); },
  answer(m) { return this.onDescription('answer', m); },
  async candidate(m) {
    try { await this.pc?.addIceCandidate(m.candidate || undefined); } catch (e) { this.log('candidate', e); }
  },
  // After peer_failed the client has already said why it is out; `left` only confirms it.
  left() { if (this.ws) this.end('Left the room', 'idle'); },
  kicked(m) {
    this.notice(m.message);
    // The node that held the room is gone or going (a cluster): the server closes the connection next,
    // and the client reconnects as after any lost connection, landing in the room re-created
    // on a node that is alive.
    if (['node_lost', 'node_draining', 'room_moved'].includes(m.reason)) { this.dropSession(); this.status('connecting', 'Reconnecting…'); return; }
    const text = { room_closed: 'Room closed', server_shutdown: 'Server shut down' }[m.reason] || 'Removed from the room';
    this.end(text, 'error');
  },
  error(m) {
    this.log('error', m.code, m.message);
    this.emit('server-error', { code: m.code, message: m.message });
    // The server gave up on the media connection: join again, as after a lost WebSocket.
    if (m.code === 'peer_failed') this.ws?.close();
    else if (['invalid_room', 'invalid_name', 'server_full', 'too_many_rooms', 'unavailable'].includes(m.code)) { this.notice(m.message); this.end('Not connected', 'idle'); }
    else if (m.code === 'unauthorized' && !this.selfId) { this.notice(m.message); this.end('Not connected', 'idle'); }
    else if (m.code === 'abusive') { this.notice(m.message); this.end('Disconnected', 'error'); }
  },
};

// The camera and microphone asked for, as far as the browser gives them: without a camera (none,
// refused, busy) the microphone alone, without either an empty stream (a viewer). Resolves to
// { stream, notice }, the notice saying what was not available.
export async function openDevices({ camera = true, mic = true, simulcast = true } = {}) {
  // 720p when the camera has it, so that all three simulcast layers are worth sending.
  const video = simulcast ? { width: { ideal: 1280 }, height: { ideal: 720 } } : true;
  const tries = [];
  if (camera) tries.push({ audio: mic, video });
  if (mic) tries.push({ audio: true, video: false });
  let failure = null;
  for (const constraints of tries) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      const notice = camera && !constraints.video ? `Camera unavailable (${failure.message}): joined with the microphone only.` : '';
      return { stream, notice };
    } catch (e) {
      failure = failure || e;
    }
  }
  const notice = failure ? `Camera and microphone unavailable (${failure.message}): joined as a viewer.` : '';
  return { stream: new MediaStream(), notice };
}
