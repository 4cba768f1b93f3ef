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
  screen: null, // { sender, track } while this page shares a screen
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

function tile(id, name, { local = false, screen = false } = {}) {
  const el = document.createElement('div');
  el.className = `tile ${local ? 'local' : 'remote waiting'}${screen ? ' screen' : ''}`;
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
  if (!local && !screen) el.addEventListener('click', () => el.classList.toggle('spotlight'));
  // A shared screen comes first, across the whole width, for everyone.
  if (screen) $('tiles').prepend(el); else $('tiles').append(el);
  return el;
}

// The tile a forwarded track goes to: the participant's own, or for a screen share one of its own.
function tileOf(p, participant, source) {
  if (source !== 'screen') return p.tile;
  if (!p.screen) {
    const el = tile(participant, `${p.name} (screen)`, { screen: true });
    p.screen = { tile: el, reporter: reportTile(el) };
  }
  return p.screen.tile;
}

function dropScreen(p) {
  if (!p.screen) return;
  p.screen.reporter.stop();
  p.screen.tile.remove();
  p.screen = null;
}

// The grid: as many tiles as fit the window without scrolling, up to PAGE_SIZE a page (the rest on
// further pages, which the server is told are hidden: a hidden tile's reporter says so), with a
// shared screen or an enlarged tile across the width above them. Recomputed whenever tiles come,
// go or change, and when the window is resized.
const PAGE_SIZE = 16;
// The debug panel's summary line below the grid.
const BELOW_GRID = 40;
state.page = 0;

function layout() {
  const box = $('tiles');
  const tiles = [...box.children];
  const big = tiles.filter((el) => el.classList.contains('screen') || el.classList.contains('spotlight'));
  const small = tiles.filter((el) => !big.includes(el));
  const pages = Math.max(1, Math.ceil(small.length / PAGE_SIZE));
  state.page = Math.min(state.page, pages - 1);
  small.forEach((el, i) => {
    el.hidden = Math.floor(i / PAGE_SIZE) !== state.page;
    el.style.height = '';
    el.style.width = '';
  });
  $('pager').hidden = pages < 2;
  $('page-label').textContent = `${state.page + 1} / ${pages}`;
  const shown = small.filter((el) => !el.hidden);
  const style = getComputedStyle(box);
  const gap = parseFloat(style.rowGap) || 0;
  const width = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const top = box.getBoundingClientRect().top + window.scrollY;
  const height = Math.max(160, window.innerHeight - top - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom) - BELOW_GRID);
  // Big tiles get most of the height, the grid of the others a strip below: enlarged is meant to
  // be large (in a 1280×800 window a spotlight is about 900×500, enough for a 720p layer).
  const bigShare = big.length ? (shown.length ? 0.8 : 1) : 0;
  const bigHeight = big.length ? (height * bigShare) / big.length - gap : 0;
  for (const el of big) {
    el.style.height = `${Math.floor(bigHeight)}px`;
    el.style.width = `${Math.floor(Math.min(width, (bigHeight * 16) / 9))}px`;
  }
  const rest = height - (big.length ? (bigHeight + gap) * big.length : 0);
  let best = { cols: 1, w: 0 };
  for (let cols = 1; cols <= Math.max(1, shown.length); cols++) {
    const rows = Math.max(1, Math.ceil(shown.length / cols));
    const w = Math.min((width - (cols - 1) * gap) / cols, (((rest - (rows - 1) * gap) / rows) * 4) / 3);
    if (w > best.w) best = { cols, w };
  }
  box.style.gridTemplateColumns = `repeat(${best.cols}, ${Math.max(80, Math.floor(best.w))}px)`;
}

let layoutFrame = 0;
function relayout() {
  cancelAnimationFrame(layoutFrame);
  layoutFrame = requestAnimationFrame(layout);
}
new MutationObserver(relayout).observe($('tiles'), { childList: true, subtree: true, attributes: true, attributeFilter: ['class'] });
window.addEventListener('resize', relayout);
$('page-prev').addEventListener('click', () => { state.page = Math.max(0, state.page - 1); relayout(); });
$('page-next').addEventListener('click', () => { state.page += 1; relayout(); });

function addParticipant(info) {
  const { id, name } = info;
  if (id === state.selfId) return;
  // Their media may have come first (the server's offer can overtake participant_joined), and
  // with it a tile under a stand-in name: give it the real one.
  const known = state.participants.get(id);
  if (known) return rename(known, name, info);
  const el = tile(id, name);
  showMuted(el, info);
  state.participants.set(id, { name, tile: el, reporter: reportTile(el) });
}

function rename(p, name, info) {
  p.name = name;
  p.tile.querySelector('.name').textContent = name;
  if (p.screen) p.screen.tile.querySelector('.name').textContent = `${name} (screen)`;
  showMuted(p.tile, info);
}

// What a participant object says about muting and publishing, shown on a tile: someone who sends
// no camera (audio only, or a viewer) has a tile that says so rather than "connecting…".
function showMuted(el, { audio_muted: audio, video_muted: video, publishes = [] }) {
  el.classList.toggle('audio-muted', !!audio);
  el.classList.toggle('video-muted', !!video);
  if (!el.classList.contains('local') && !el.dataset.track) {
    const camera = publishes.includes('camera');
    el.classList.toggle('no-camera', !camera);
    el.classList.toggle('waiting', camera);
  }
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
  dropScreen(p);
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

function attach({ participant, track: id, kind, source }, track) {
  if (!state.participants.has(participant)) addParticipant({ id: participant, name: 'Guest' });
  const p = state.participants.get(participant);
  if (!p) return;
  const el = tileOf(p, participant, source);
  const others = tracksOf(el).filter((t) => t.kind !== kind);
  show(el, [...others, track]);
  if (kind === 'video') {
    el.dataset.track = id;
    el.classList.remove('no-video', 'no-camera');
    el.classList.toggle('waiting', track.muted);
    track.onunmute = () => el.classList.remove('waiting');
    (source === 'screen' ? p.screen : p).reporter.changed();
  }
  el.querySelector('video').play().catch(() => {});
  log('track', source || kind, 'from', participant);
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

// A track its publisher stopped: the tile keeps its name and says it has no video; a shared
// screen's tile goes away.
function detach({ participant, kind, source }, track) {
  const p = state.participants.get(participant);
  if (!p) return;
  if (source === 'screen') return dropScreen(p);
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
    clearTimeout(state.iceRestartTimer);
    if (s === 'connected') { setStatus(`In room ${state.room}`, 'connected'); showSelectedPair(pc); }
    else if (s === 'failed') { setStatus('Media connection failed, restarting it', 'connecting'); restartIce(pc); }
    else if (s === 'disconnected') {
      setStatus('Media connection interrupted', 'connecting');
      // A changed network (Wi-Fi to cellular, a new address) rarely comes back by itself: after
      // 1 s, try fresh ICE credentials and candidates on the same session (docs/protocol.md).
      // Chromium says "disconnected" ≈ 5 s into an outage, and the server gives up 10 s after it
      // notices: the restart has to land well inside that.
      state.iceRestartTimer = setTimeout(() => restartIce(pc), 1000);
    }
  };
  pc.onnegotiationneeded = async () => {
    try {
      state.makingOffer = true;
      await pc.setLocalDescription();
      send({ type: 'offer', sdp: pc.localDescription.sdp, sources: sources(pc) });
      showDescriptions();
    } catch (e) {
      log('offer failed', e);
    } finally {
      state.makingOffer = false;
    }
  };
  for (const track of state.localStream.getTracks()) publish(pc, track);
  // A viewer publishes nothing, yet the server waits for the client's first offer before it
  // offers anything (docs/protocol.md, negotiation): one receive-only section makes that offer.
  if (!state.localStream.getTracks().length) pc.addTransceiver('audio', { direction: 'recvonly' });
  state.statsTimer = setInterval(() => showSelectedPair(pc).catch(() => {}), 2000);
  return pc;
}

// An ICE restart keeps the session, its subscriptions and tiles: restartIce() makes the next offer
// carry new credentials, and the server restarts ICE on the same participant.
function restartIce(pc) {
  if (state.pc !== pc || pc.connectionState === 'connected') return;
  log('restarting ICE');
  pc.restartIce();
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

// What this page's offer says its media sections carry beyond what their kind tells: which one is
// a shared screen (docs/protocol.md, offer).
function sources(pc) {
  const out = {};
  for (const t of pc.getTransceivers()) if (t.mid && state.screen && t.sender === state.screen.sender) out[t.mid] = 'screen';
  return out;
}

// Shares a screen (or, for tests and embedding pages, any video track given) as a second video
// track; everyone sees it large, with a presenter label. It stops when the browser's own "Stop
// sharing" ends the track, or on stopScreen().
async function shareScreen(given) {
  if (!state.pc || state.screen) return;
  const track = given || (await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false })).getVideoTracks()[0];
  // Its own transceiver: addTrack could take over an m-section the server forwards on.
  const { sender } = state.pc.addTransceiver(track, { direction: 'sendonly', streams: [new MediaStream([track])] });
  state.screen = { sender, track };
  track.addEventListener('ended', stopScreen);
  showScreenButton();
  log('sharing the screen');
}

function stopScreen() {
  const screen = state.screen;
  if (!screen) return;
  state.screen = null;
  screen.track.stop();
  if (state.pc && state.pc.signalingState !== 'closed') state.pc.removeTrack(screen.sender);
  showScreenButton();
  log('stopped sharing the screen');
}
Object.assign(state, { shareScreen, stopScreen });

function showScreenButton() {
  const button = $('share-screen');
  button.setAttribute('aria-pressed', String(!!state.screen));
  button.textContent = state.screen ? 'Stop sharing' : 'Share screen';
}

// Device pickers: the cameras and microphones the browser lists (with names once the page may
// use them), the ones in use selected. Picking another swaps the track in place with
// replaceTrack: no renegotiation, the same simulcast layers, nothing changes for the others but
// the picture or the sound.
async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
  for (const [kind, select] of [['videoinput', $('camera-select')], ['audioinput', $('mic-select')]]) {
    const current = state.localStream?.getTracks().find((t) => (t.kind === 'video') === (kind === 'videoinput'));
    const inUse = current?.getSettings().deviceId;
    const options = devices.filter((d) => d.kind === kind).map((d, i) => {
      const option = new Option(d.label || `${kind === 'videoinput' ? 'Camera' : 'Microphone'} ${i + 1}`, d.deviceId);
      option.selected = d.deviceId === inUse;
      return option;
    });
    select.replaceChildren(...options);
    select.hidden = !current || options.length < 2;
  }
}

async function switchDevice(kind, deviceId) {
  const old = state.localStream?.getTracks().find((t) => t.kind === kind);
  if (!old || old.getSettings().deviceId === deviceId) return;
  const constraints = kind === 'video'
    ? { video: { ...(old.getConstraints() || {}), deviceId: { exact: deviceId } } }
    : { audio: { deviceId: { exact: deviceId } } };
  let track;
  try {
    [track] = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks();
  } catch (e) {
    notice(`That ${kind === 'video' ? 'camera' : 'microphone'} is unavailable: ${e.message}`);
    return listDevices();
  }
  track.enabled = !state.muted[kind];
  track.addEventListener('ended', () => unpublish(kind));
  const sender = state.pc?.getSenders().find((s) => s.track === old);
  await sender?.replaceTrack(track);
  state.localStream.removeTrack(old);
  state.localStream.addTrack(track);
  old.stop();
  document.querySelector('.tile.local video').srcObject = new MediaStream(state.localStream.getTracks());
  log('switched', kind, 'to', track.label);
  listDevices();
}
state.switchDevice = switchDevice;

// Stops publishing one kind of media: the track ends and leaves the connection, and the server
// unpublishes it for everyone.
function unpublish(kind) {
  const pc = state.pc;
  for (const sender of pc?.getSenders() || []) {
    if (sender.track?.kind !== kind || sender === state.screen?.sender) continue;
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
    if (state.reconnects) { notice(''); log('reconnected after', state.reconnects, 'tries'); }
    state.reconnects = 0;
    state.selfId = m.id;
    state.room = m.room;
    // A new session starts unmuted on the server: say again what this page keeps muted.
    for (const kind of ['audio', 'video']) if (state.muted[kind]) send({ type: 'mute', kind, muted: true });
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
    for (const el of document.querySelectorAll('.tile:not(.screen)')) {
      const id = el.classList.contains('local') ? state.selfId : el.dataset.participant;
      el.classList.toggle('speaking', speaking.has(id));
    }
  },
  full(m) {
    notice(`Room "${m.room}" is full (${m.capacity} participants). Try again later or pick another room.`);
    teardown('Room full', 'error');
  },
  // The room is being recorded (or no longer): everyone in it must be able to see so.
  recording(m) { document.getElementById('recording').hidden = !m.active; },
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
    // The server gave up on the media connection: join again, as after a lost WebSocket.
    if (m.code === 'peer_failed') state.ws?.close();
    else if (['invalid_room', 'invalid_name', 'unauthorized', 'server_full', 'too_many_rooms'].includes(m.code)) { notice(m.message); teardown('Not connected', 'idle'); }
    else if (m.code === 'abusive') { notice(m.message); teardown('Disconnected', 'error'); }
  },
};

// The camera and microphone asked for, as far as the browser gives them: without a camera (none,
// refused, busy) the page joins with the microphone, without either as a viewer that only
// receives; it says which.
async function openDevices(camera, mic) {
  // 720p when the camera has it, so that all three simulcast layers are worth sending.
  const video = params.get('simulcast') === '0' ? true : { width: { ideal: 1280 }, height: { ideal: 720 } };
  const tries = [];
  if (camera) tries.push({ audio: mic, video });
  if (mic) tries.push({ audio: true, video: false });
  let failure = null;
  for (const constraints of tries) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      if (camera && !constraints.video) notice(`Camera unavailable (${failure.message}): joined with the microphone only.`);
      return stream;
    } catch (e) {
      failure = failure || e;
    }
  }
  if (failure) notice(`Camera and microphone unavailable (${failure.message}): joined as a viewer.`);
  return new MediaStream();
}

async function join(event) {
  event.preventDefault();
  const room = $('room').value.trim();
  const name = $('name').value.trim();
  notice('');
  $('join').disabled = true;
  setStatus('Starting camera…', 'connecting');
  state.localStream = await openDevices($('use-camera').checked, $('use-mic').checked);
  const self = tile('self', name || 'Guest', { local: true });
  self.querySelector('video').srcObject = state.localStream;
  self.classList.toggle('no-camera', state.localStream.getVideoTracks().length === 0);
  listDevices();
  history.replaceState(null, '', `?${new URLSearchParams({ ...Object.fromEntries(params), room })}`);
  state.reconnects = 0;
  connect(room, name);
}

// Reconnect: a WebSocket that closes without the page or the server ending the session (a
// network change, a server restart, a proxy timeout) is opened again after 1, 2, 4… s (at most
// 10 s between tries, 10 tries), and the page joins again with the same camera and microphone.
const RECONNECT_TRIES = 10;

function connect(room, name) {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  state.ws = ws;
  ws.onopen = () => {
    send({ type: 'join', room, name, ...(params.get('token') ? { token: params.get('token') } : {}) });
    $('leave').disabled = false;
    $('mute-audio').disabled = state.localStream.getAudioTracks().length === 0;
    $('mute-video').disabled = state.localStream.getVideoTracks().length === 0;
    $('share-screen').disabled = !navigator.mediaDevices.getDisplayMedia;
  };
  // Messages are handled one at a time, in order: a candidate must not overtake its offer.
  let queue = Promise.resolve();
  ws.onmessage = (e) => {
    let message;
    try { message = JSON.parse(e.data); } catch { return log('bad message from server'); }
    queue = queue.then(() => handlers[message.type]?.(message)).catch((err) => log(message.type, 'failed:', err));
  };
  ws.onclose = () => {
    if (state.ws !== ws) return; // the page or the server ended the session on purpose
    if (state.reconnects >= RECONNECT_TRIES) return teardown('Disconnected from server', 'error');
    state.reconnects += 1;
    dropSession();
    const delay = Math.min(10000, 1000 * 2 ** (state.reconnects - 1));
    notice(`The connection to the server was lost. Reconnecting (try ${state.reconnects} of ${RECONNECT_TRIES})…`);
    setStatus('Reconnecting…', 'connecting');
    log('reconnecting in', delay, 'ms');
    state.reconnectTimer = setTimeout(() => { if (state.ws === ws) connect(room, name); }, delay);
  };
}

// Ends the media session and forgets the others, keeping the page's own camera and microphone.
function dropSession() {
  state.pc?.close();
  state.pc = null;
  clearInterval(state.statsTimer);
  state.relayCandidates = 0;
  state.iceErrors = [];
  state.selectedPair = null;
  $('selected-pair').textContent = 'none yet';
  stopScreen();
  [...state.participants.keys()].forEach(removeParticipant);
  state.forwarded = new Map();
  state.selfId = null;
}

function teardown(text, kind) {
  const ws = state.ws;
  state.ws = null;
  clearTimeout(state.reconnectTimer);
  if (ws && ws.readyState <= WebSocket.OPEN) ws.close();
  dropSession();
  state.localStream?.getTracks().forEach((t) => t.stop());
  state.localStream = null;
  $('share-screen').disabled = true;
  $('camera-select').hidden = true;
  $('mic-select').hidden = true;
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
$('camera-select').addEventListener('change', (e) => switchDevice('video', e.target.value));
$('mic-select').addEventListener('change', (e) => switchDevice('audio', e.target.value));
navigator.mediaDevices?.addEventListener?.('devicechange', () => { if (state.localStream) listDevices(); });
$('share-screen').addEventListener('click', () => (state.screen ? stopScreen() : shareScreen().catch((e) => notice(`Screen sharing unavailable: ${e.message}`))));
$('room').value = params.get('room') || '';
$('name').value = params.get('name') || '';
$('relay').checked = params.get('relay') === '1';
$('use-camera').checked = params.get('camera') !== '0';
$('use-mic').checked = params.get('mic') !== '0';
window.addEventListener('pagehide', () => send({ type: 'leave' }));
