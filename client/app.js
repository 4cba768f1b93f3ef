// roomcast browser client: one RTCPeerConnection to the SFU, WebSocket signaling (docs/protocol.md).
// The client is the polite peer: on glare it rolls back its own offer and answers the server's.
'use strict';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const state = {
  ws: null,
  pc: null,
  localStream: null,
  selfId: null,
  room: null,
  makingOffer: false,
  participants: new Map(), // id -> { name, tile, reporter }
  forwarded: new Map(), // mid -> { participant, track, kind }: what the server sends on it
  speakers: [], // [{ id, level }], the dominant speaker first
  muted: { audio: false, video: false },
  relayCandidates: 0,
  iceErrors: [],
  selectedPair: null,
  statsTimer: null,
};
window.roomcast = state; // for the end-to-end tests and for curious operators

function log(...args) {
  const line = `${new Date().toISOString().slice(11, 23)} ${args.join(' ')}`;
  $('log').textContent = `${line}\n${$('log').textContent}`.slice(0, 20000);
}

function setStatus(text, kind) {
  $('status').textContent = text;
  $('status').dataset.state = kind;
}

function notice(text) {
  // Server messages are lower-case sentence fragments; the banner shows a sentence.
  $('notice').textContent = text ? text[0].toUpperCase() + text.slice(1) : '';
  $('notice').hidden = !text;
}

function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

function tile(id, name, { local = false } = {}) {
  const el = document.createElement('div');
  el.className = `tile ${local ? 'local' : 'remote waiting'}`;
  el.dataset.participant = id;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = local;
  const label = document.createElement('span');
  label.className = 'name';
  label.textContent = local ? `${name} (you)` : name;
  const badge = document.createElement('span');
  badge.className = 'muted-badge';
  badge.textContent = 'muted';
  badge.title = 'Microphone muted';
  el.append(video, label, badge);
  // A click enlarges a remote tile to the full width (and the server sends it a larger layer).
  if (!local) el.addEventListener('click', () => el.classList.toggle('spotlight'));
  $('tiles').append(el);
  return el;
}

function addParticipant(info) {
  const { id, name } = info;
  if (id === state.selfId || state.participants.has(id)) return;
  const el = tile(id, name);
  showMuted(el, info);
  state.participants.set(id, { name, tile: el, reporter: reportTile(el) });
}

// What a participant object says about muting, shown on a tile.
function showMuted(el, { audio_muted: audio, video_muted: video }) {
  el.classList.toggle('audio-muted', !!audio);
  el.classList.toggle('video-muted', !!video);
}

function updateParticipant(info) {
  if (info.id === state.selfId) return showMuted(document.querySelector('.tile.local'), info);
  if (!state.participants.has(info.id)) return addParticipant(info);
  showMuted(state.participants.get(info.id).tile, info);
}

// Mutes or unmutes what this page publishes of one kind: the browser sends silence or black,
// and the server forwards none of it (docs/protocol.md, mute).
function setMuted(kind, muted) {
  state.muted[kind] = muted;
  state.localStream?.getTracks().filter((t) => t.kind === kind).forEach((t) => { t.enabled = !muted; });
  send({ type: 'mute', kind, muted });
  showMuteButton(kind);
}

function showMuteButton(kind) {
  const muted = state.muted[kind];
  const button = $(`mute-${kind}`);
  button.setAttribute('aria-pressed', String(muted));
  button.textContent = kind === 'audio' ? (muted ? 'Unmute mic' : 'Mute mic') : (muted ? 'Start camera' : 'Stop camera');
}

function removeParticipant(id) {
  const p = state.participants.get(id);
  if (!p) return;
  p.reporter.stop();
  p.tile.remove();
  state.participants.delete(id);
}

// Puts each received track in the tile of whoever publishes it now. Every server offer and answer
// lists what each forwarded media section carries (docs/protocol.md): the server reuses the
// m-section of a track that ended for a later one, and since an m-section's msid never changes,
// neither the browser's remote stream nor the track's id says whose it is.
function placeForwarded(pc, tracks) {
  const now = new Map((tracks || []).map((t) => [t.mid, t]));
  for (const transceiver of pc.getTransceivers()) {
    const before = state.forwarded.get(transceiver.mid);
    const after = now.get(transceiver.mid);
    if (before?.track === after?.track) continue;
    if (before) detach(before, transceiver.receiver.track);
    if (after) attach(after, transceiver.receiver.track);
  }
  state.forwarded = now;
}

function attach({ participant, track: id, kind }, track) {
  if (!state.participants.has(participant)) addParticipant({ id: participant, name: 'Guest' });
  const p = state.participants.get(participant);
  if (!p) return;
  const others = tracksOf(p.tile).filter((t) => t.kind !== kind);
  show(p.tile, [...others, track]);
  const el = p.tile;
  if (kind === 'video') {
    el.dataset.track = id;
    el.classList.remove('no-video');
    el.classList.toggle('waiting', track.muted);
    track.onunmute = () => el.classList.remove('waiting');
    p.reporter.changed();
  }
  el.querySelector('video').play().catch(() => {});
  log('track', kind, 'from', participant);
}

function tracksOf(el) {
  return el.querySelector('video').srcObject?.getTracks() || [];
}

// The page's own stream per participant (which received track is whose comes from the server's
// descriptions, not from the browser's remote streams), made anew on each change: a media
// element given a new stream reloads with all of its tracks, where one whose stream merely
// gained a track may go on showing nothing.
function show(el, tracks) {
  el.querySelector('video').srcObject = new MediaStream(tracks);
}

// A track its publisher stopped: the tile keeps its name and says it has no video.
function detach({ participant, kind }, track) {
  const p = state.participants.get(participant);
  if (!p) return;
  show(p.tile, tracksOf(p.tile).filter((t) => t !== track));
  if (kind !== 'video') return;
  delete p.tile.dataset.track;
  p.tile.classList.remove('waiting');
  p.tile.classList.add('no-video');
}

// Tells the server how a remote tile shows its video: its size in device pixels, so the server
// sends no layer much larger than that, and whether it can be seen at all, so a tile out of sight
// (scrolled away, hidden) costs no bandwidth; shown again, its video resumes at once
// (docs/protocol.md, track_settings).
function reportTile(el) {
  const video = el.querySelector('video');
  const shown = { visible: true, width: 0, height: 0 };
  let sent = '';
  let timer = null;
  const report = () => {
    const track = el.dataset.track;
    if (!track) return;
    const dpr = window.devicePixelRatio || 1;
    const message = { type: 'track_settings', track, visible: shown.visible };
    if (shown.width > 0 && shown.height > 0) {
      message.width = Math.round(shown.width * dpr);
      message.height = Math.round(shown.height * dpr);
    }
    const key = JSON.stringify(message);
    if (key !== sent) { sent = key; send(message); }
  };
  const soon = () => { clearTimeout(timer); timer = setTimeout(report, 100); };
  const sight = new IntersectionObserver(([entry]) => { shown.visible = entry.isIntersecting; soon(); });
  const size = new ResizeObserver(([entry]) => {
    shown.width = entry.contentRect.width;
    shown.height = entry.contentRect.height;
    soon();
  });
  sight.observe(video);
  size.observe(video);
  return { changed: soon, stop: () => { clearTimeout(timer); sight.disconnect(); size.disconnect(); } };
}

function showDescriptions() {
  $('local-sdp').value = state.pc?.localDescription?.sdp || '';
  $('remote-sdp').value = state.pc?.remoteDescription?.sdp || '';
}

function relayUnreachable(pc) {
  const why = state.iceErrors.length ? ` (${state.iceErrors.join('; ')})` : '';
  notice(iceServersHaveTurn(pc) ? `The TURN relay could not be reached${why}. With "Relay only" no media can flow; try without it.`
    : 'Relay only was asked for, but the server offers no TURN relay. Try without "Relay only".');
  setStatus('Relay unreachable', 'error');
}

function iceServersHaveTurn(pc) {
  return pc.getConfiguration().iceServers.some((s) => [].concat(s.urls).some((u) => /^turns?:/.test(u)));
}

async function showSelectedPair(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((r) => { if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
  if (!pair) stats.forEach((r) => { if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = pair || r; });
  if (!pair) return;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  state.selectedPair = { local: local?.candidateType, remote: remote?.candidateType, protocol: local?.protocol };
  $('selected-pair').textContent = `${local?.candidateType} (${local?.protocol} ${local?.address}:${local?.port}) → server ${remote?.candidateType} (${remote?.address}:${remote?.port})`;
}

function createPeer(iceServers) {
  const config = { iceServers };
  const relayOnly = $('relay').checked;
  if (relayOnly) config.iceTransportPolicy = 'relay';
  const pc = new RTCPeerConnection(config);
  pc.onicecandidate = ({ candidate }) => {
    if (candidate?.type === 'relay') state.relayCandidates += 1;
    send({ type: 'candidate', candidate: candidate ? candidate.toJSON() : null });
  };
  pc.onicecandidateerror = (e) => {
    state.iceErrors.push(`${e.url}: ${e.errorCode} ${e.errorText}`.trim().replace(/\.$/, ''));
    log('ICE candidate error', e.url, e.errorCode, e.errorText);
  };
  pc.onicegatheringstatechange = () => {
    if (pc.iceGatheringState === 'complete' && relayOnly && state.relayCandidates === 0) relayUnreachable(pc);
  };
  pc.onconnectionstatechange = () => {
    const s = pc.connectionState;
    log('connection', s);
    if (s === 'connected') { setStatus(`In room ${state.room}`, 'connected'); showSelectedPair(pc); }
    else if (s === 'failed') setStatus('Media connection failed', 'error');
    else if (s === 'disconnected') setStatus('Media connection interrupted', 'connecting');
  };
  pc.onnegotiationneeded = async () => {
    try {
      state.makingOffer = true;
      await pc.setLocalDescription();
      send({ type: 'offer', sdp: pc.localDescription.sdp });
      showDescriptions();
    } catch (e) {
      log('offer failed', e);
    } finally {
      state.makingOffer = false;
    }
  };
  for (const track of state.localStream.getTracks()) publish(pc, track);
  state.statsTimer = setInterval(() => showSelectedPair(pc).catch(() => {}), 2000);
  return pc;
}

// Three VP8 layers (quarter, half and full resolution) when the camera is large enough that the
// browser will send them; the server forwards each subscriber the one that fits. `?simulcast=0`
// publishes one stream.
const SIMULCAST = [{ rid: 'q', scaleResolutionDownBy: 4 }, { rid: 'h', scaleResolutionDownBy: 2 }, { rid: 'f' }];

function publish(pc, track) {
  // A camera unplugged or a permission revoked ends the track: stop publishing it.
  track.addEventListener('ended', () => unpublish(track.kind));
  const wantsSimulcast = track.kind === 'video' && params.get('simulcast') !== '0' && (track.getSettings().height || 0) >= 360;
  if (!wantsSimulcast) return pc.addTrack(track, state.localStream);
  pc.addTransceiver(track, { direction: 'sendonly', streams: [state.localStream], sendEncodings: SIMULCAST });
  return null;
}

// Stops publishing one kind of media: the track ends and leaves the connection, and the server
// unpublishes it for everyone.
function unpublish(kind) {
  const pc = state.pc;
  for (const sender of pc?.getSenders() || []) {
    if (sender.track?.kind !== kind) continue;
    sender.track.stop();
    pc.removeTrack(sender);
    log('stopped publishing', kind);
  }
}
state.unpublish = unpublish;

async function onDescription(type, { sdp, tracks }) {
  const pc = state.pc;
  if (!pc) return;
  // Polite peer: an offer that collides with ours wins; setRemoteDescription rolls ours back.
  await pc.setRemoteDescription({ type, sdp });
  placeForwarded(pc, tracks);
  if (type === 'offer') {
    await pc.setLocalDescription();
    send({ type: 'answer', sdp: pc.localDescription.sdp });
  }
  showDescriptions();
}

const handlers = {
  joined(m) {
    state.selfId = m.id;
    state.room = m.room;
    setStatus(`Joined ${m.room}, connecting media…`, 'connecting');
    log('joined', m.room, 'as', m.id);
    m.participants.forEach(addParticipant);
    state.pc = createPeer(m.ice_servers);
  },
  participant_joined(m) { addParticipant(m.participant); log('joined:', m.participant.name); },
  participant_updated(m) { updateParticipant(m.participant); },
  participant_left(m) { removeParticipant(m.id); log('left:', m.id); },
  // A ring around whoever speaks; the server sends the list whenever it changes.
  speakers(m) {
    state.speakers = m.speakers;
    const speaking = new Set(m.speakers.map((s) => s.id));
    for (const el of document.querySelectorAll('.tile')) {
      const id = el.classList.contains('local') ? state.selfId : el.dataset.participant;
      el.classList.toggle('speaking', speaking.has(id));
    }
  },
  full(m) {
    notice(`Room "${m.room}" is full (${m.capacity} participants). Try again later or pick another room.`);
    teardown('Room full', 'error');
  },
  offer(m) { return onDescription('offer', m); },
  answer(m) { return onDescription('answer', m); },
  async candidate(m) {
    try { await state.pc?.addIceCandidate(m.candidate || undefined); } catch (e) { log('candidate', e); }
  },
  // After peer_failed the page has already said why it is out; `left` only confirms it.
  left() { if (state.ws) teardown('Left the room', 'idle'); },
  kicked(m) {
    notice(m.message);
    const status = { room_closed: 'Room closed', server_shutdown: 'Server shut down' }[m.reason] || 'Removed from the room';
    teardown(status, 'error');
  },
  error(m) {
    log('error', m.code, m.message);
    if (m.code === 'peer_failed') { notice('The media connection failed. Please join again.'); teardown('Media connection failed', 'error'); }
    else if (['invalid_room', 'invalid_name', 'unauthorized', 'server_full', 'too_many_rooms'].includes(m.code)) { notice(m.message); teardown('Not connected', 'idle'); }
    else if (m.code === 'abusive') { notice(m.message); teardown('Disconnected', 'error'); }
  },
};

async function join(event) {
  event.preventDefault();
  const room = $('room').value.trim();
  const name = $('name').value.trim();
  notice('');
  $('join').disabled = true;
  setStatus('Starting camera…', 'connecting');
  try {
    // 720p when the camera has it, so that all three simulcast layers are worth sending.
    const video = params.get('simulcast') === '0' ? true : { width: { ideal: 1280 }, height: { ideal: 720 } };
    state.localStream = await navigator.mediaDevices.getUserMedia({ audio: true, video });
  } catch (e) {
    notice(`Camera or microphone unavailable: ${e.message}`);
    $('join').disabled = false;
    return setStatus('Not connected', 'idle');
  }
  tile('self', name || 'Guest', { local: true }).querySelector('video').srcObject = state.localStream;
  history.replaceState(null, '', `?${new URLSearchParams({ ...Object.fromEntries(params), room })}`);
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  state.ws = ws;
  ws.onopen = () => {
    send({ type: 'join', room, name, ...(params.get('token') ? { token: params.get('token') } : {}) });
    $('leave').disabled = false;
    $('mute-audio').disabled = false;
    $('mute-video').disabled = false;
  };
  // Messages are handled one at a time, in order: a candidate must not overtake its offer.
  let queue = Promise.resolve();
  ws.onmessage = (e) => {
    let message;
    try { message = JSON.parse(e.data); } catch { return log('bad message from server'); }
    queue = queue.then(() => handlers[message.type]?.(message)).catch((err) => log(message.type, 'failed:', err));
  };
  ws.onclose = () => { if (state.ws === ws) teardown('Disconnected from server', 'error'); };
}

function teardown(text, kind) {
  const ws = state.ws;
  state.ws = null;
  if (ws && ws.readyState <= WebSocket.OPEN) ws.close();
  state.pc?.close();
  state.pc = null;
  clearInterval(state.statsTimer);
  state.relayCandidates = 0;
  state.iceErrors = [];
  state.selectedPair = null;
  $('selected-pair').textContent = 'none yet';
  state.localStream?.getTracks().forEach((t) => t.stop());
  state.localStream = null;
  state.participants.forEach((p) => p.reporter.stop());
  state.participants.clear();
  state.forwarded = new Map();
  state.selfId = null;
  $('tiles').replaceChildren();
  $('join').disabled = false;
  $('leave').disabled = true;
  for (const kind of ['audio', 'video']) {
    $(`mute-${kind}`).disabled = true;
    state.muted[kind] = false;
    showMuteButton(kind);
  }
  setStatus(text, kind);
}

function leave() {
  send({ type: 'leave' });
  teardown('Left the room', 'idle');
}

$('join-form').addEventListener('submit', join);
$('leave').addEventListener('click', leave);
$('mute-audio').addEventListener('click', () => setMuted('audio', !state.muted.audio));
$('mute-video').addEventListener('click', () => setMuted('video', !state.muted.video));
$('room').value = params.get('room') || '';
$('name').value = params.get('name') || '';
$('relay').checked = params.get('relay') === '1';
window.addEventListener('pagehide', () => send({ type: 'leave' }));
