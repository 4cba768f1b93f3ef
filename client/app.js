// roomcast's meeting page: the tiles, buttons, pickers and chat around a RoomcastClient
// (roomcast.js, docs/client-sdk.md), which does the talking to the server.

import { RoomcastClient, openDevices } from './roomcast.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

let client = null;
// Per remote participant: its tile, and its screen share's tile while it shares.
const views = new Map(); // id -> { tile, reporter, screen: { tile, reporter } | null }
const ui = { page: 0, speakerView: false, floor: null, unread: 0 };

function log(text) {
  const line = `${new Date().toISOString().slice(11, 23)} ${text}`;
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

function nameOf(id) {
  if (id === client?.selfId) return 'You';
  return client?.participants.get(id)?.name || 'Someone who left';
}

// ---- Tiles ----

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
function tileOf(view, participant, source) {
  if (source !== 'screen') return view.tile;
  if (!view.screen) {
    const el = tile(participant, `${nameOf(participant)} (screen)`, { screen: true });
    view.screen = { tile: el, reporter: reportTile(el) };
  }
  return view.screen.tile;
}

function dropScreen(view) {
  if (!view.screen) return;
  view.screen.reporter.stop();
  view.screen.tile.remove();
  view.screen = null;
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

function onParticipant({ participant }) {
  let view = views.get(participant.id);
  if (!view) {
    const el = tile(participant.id, participant.name);
    view = { tile: el, reporter: reportTile(el), screen: null };
    views.set(participant.id, view);
  }
  view.tile.querySelector('.name').textContent = participant.name;
  if (view.screen) view.screen.tile.querySelector('.name').textContent = `${participant.name} (screen)`;
  showMuted(view.tile, participant);
}

function onParticipantLeft({ id }) {
  const view = views.get(id);
  if (!view) return;
  view.reporter.stop();
  view.tile.remove();
  dropScreen(view);
  views.delete(id);
}

function tracksOf(el) {
  return el.querySelector('video').srcObject?.getTracks() || [];
}

// The page's own stream per tile, made anew on each change: a media element given a new stream
// reloads with all of its tracks, where one whose stream merely gained a track may go on showing
// nothing.
function show(el, tracks) {
  el.querySelector('video').srcObject = new MediaStream(tracks);
}

function onTrack({ participant, id, kind, source, track }) {
  const view = views.get(participant);
  if (!view) return;
  const el = tileOf(view, participant, source);
  const others = tracksOf(el).filter((t) => t.kind !== kind);
  show(el, [...others, track]);
  if (kind === 'video') {
    el.dataset.track = id;
    el.classList.remove('no-video', 'no-camera');
    el.classList.toggle('waiting', track.muted);
    track.onunmute = () => el.classList.remove('waiting');
    (source === 'screen' ? view.screen : view).reporter.changed();
  }
  el.querySelector('video').play().catch(() => {});
  log(`track ${source || kind} from ${participant}`);
}

// A track its publisher stopped: the tile keeps its name and says it has no video; a shared
// screen's tile goes away.
function onTrackEnded({ participant, kind, source, track }) {
  const view = views.get(participant);
  if (!view) return;
  if (source === 'screen') return dropScreen(view);
  show(view.tile, tracksOf(view.tile).filter((t) => t !== track));
  if (kind !== 'video') return;
  delete view.tile.dataset.track;
  view.tile.classList.remove('waiting');
  view.tile.classList.add('no-video');
}

// Tells the server how a remote tile shows its video: its size in device pixels, so the server
// sends no layer much larger than that, and whether it can be seen at all, so a tile out of sight
// (on another page, hidden) costs no bandwidth; shown again, its video resumes at once.
function reportTile(el) {
  const video = el.querySelector('video');
  const shown = { visible: true, width: 0, height: 0 };
  let timer = null;
  const report = () => {
    if (!el.dataset.track || !client) return;
    const dpr = window.devicePixelRatio || 1;
    client.setTrackSettings(el.dataset.track, { visible: shown.visible, width: shown.width * dpr, height: shown.height * dpr });
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

// ---- Layout ----

// The grid: as many tiles as fit the window without scrolling, up to PAGE_SIZE a page (the rest on
// further pages, which the server is told are hidden: a hidden tile's reporter says so), with a
// shared screen, an enlarged tile or (in speaker view) whoever holds the floor across the width
// above them. Recomputed whenever tiles come, go or change, and when the window is resized.
const PAGE_SIZE = 16;
// The debug panel's summary line below the grid.
const BELOW_GRID = 40;

function isBig(el) {
  if (el.classList.contains('screen') || el.classList.contains('spotlight')) return true;
  return ui.speakerView && el.classList.contains('floor');
}

function layout() {
  const box = $('tiles');
  const tiles = [...box.children];
  const big = tiles.filter(isBig);
  const small = tiles.filter((el) => !big.includes(el));
  const pages = Math.max(1, Math.ceil(small.length / PAGE_SIZE));
  ui.page = Math.min(ui.page, pages - 1);
  small.forEach((el, i) => {
    el.hidden = Math.floor(i / PAGE_SIZE) !== ui.page;
    el.style.height = '';
    el.style.width = '';
  });
  $('pager').hidden = pages < 2;
  $('page-label').textContent = `${ui.page + 1} / ${pages}`;
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
    el.hidden = false;
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
$('page-prev').addEventListener('click', () => { ui.page = Math.max(0, ui.page - 1); relayout(); });
$('page-next').addEventListener('click', () => { ui.page += 1; relayout(); });

// Speaker view: whoever holds the floor (the dominant speaker, first in the server's list) large
// above a strip of the others; the floor stays with the last speaker through silence.
function setSpeakerView(on) {
  ui.speakerView = on;
  $('tiles').classList.toggle('speaker-view', on);
  $('view-toggle').setAttribute('aria-pressed', String(on));
  $('view-toggle').textContent = on ? 'Grid view' : 'Speaker view';
  showFloor();
  relayout();
}

function onSpeakers({ speakers }) {
  const speaking = new Set(speakers.map((s) => s.id));
  for (const el of document.querySelectorAll('.tile:not(.screen)')) {
    const id = el.classList.contains('local') ? client.selfId : el.dataset.participant;
    el.classList.toggle('speaking', speaking.has(id));
  }
  if (speakers.length && speakers[0].id !== client.selfId) ui.floor = speakers[0].id;
  showFloor();
}

function showFloor() {
  for (const el of document.querySelectorAll('.tile.remote:not(.screen)')) {
    el.classList.toggle('floor', el.dataset.participant === ui.floor);
  }
}

// ---- Chat (on the data channel) ----

function showChat(open) {
  $('chat').hidden = !open;
  $('chat-toggle').setAttribute('aria-pressed', String(open));
  if (open) { ui.unread = 0; showUnread(); $('chat-text').focus(); }
  relayout();
}

function showUnread() {
  $('chat-toggle').textContent = ui.unread ? `Chat (${ui.unread})` : 'Chat';
}

// One line of chat; everything from the network goes in as text, never as markup.
function chatLine(from, text, { own = false, system = false } = {}) {
  const item = document.createElement('li');
  item.className = own ? 'own' : system ? 'system' : '';
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = system ? '' : own ? 'You' : nameOf(from);
  const when = document.createElement('time');
  const now = new Date();
  when.dateTime = now.toISOString();
  when.textContent = now.toTimeString().slice(0, 5);
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  item.append(who, when, body);
  $('chat-log').append(item);
  item.scrollIntoView({ block: 'end' });
  if ($('chat').hidden && !own && !system) { ui.unread += 1; showUnread(); }
}

function onData({ from, payload }) {
  if (payload?.kind === 'chat' && typeof payload.text === 'string') chatLine(from, payload.text.slice(0, 4000));
}

function sendChat(event) {
  event.preventDefault();
  const text = $('chat-text').value.trim();
  if (!text || !client) return;
  if (!client.sendData({ kind: 'chat', text })) return chatLine(null, 'Chat is not connected yet.', { system: true });
  chatLine(client.selfId, text, { own: true });
  $('chat-text').value = '';
}

// ---- Buttons, pickers, joining ----

function showMuteButton(kind, muted) {
  const button = $(`mute-${kind}`);
  button.setAttribute('aria-pressed', String(muted));
  button.textContent = kind === 'audio' ? (muted ? 'Unmute mic' : 'Mute mic') : (muted ? 'Start camera' : 'Stop camera');
}

function showScreenButton({ sharing }) {
  const button = $('share-screen');
  button.setAttribute('aria-pressed', String(sharing));
  button.textContent = sharing ? 'Stop sharing' : 'Share screen';
}

// Device pickers: the cameras and microphones the browser lists (with names once the page may
// use them), the ones in use selected. Picking another swaps the track in place (replaceTrack):
// nothing changes for the others but the picture or the sound.
async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
  for (const [kind, select] of [['videoinput', $('camera-select')], ['audioinput', $('mic-select')]]) {
    const current = client?.localStream?.getTracks().find((t) => (t.kind === 'video') === (kind === 'videoinput'));
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
  await client?.switchDevice(kind, deviceId);
  listDevices();
}

function showLocal(stream) {
  document.querySelector('.tile.local video').srcObject = new MediaStream(stream.getTracks());
}

function wire(c) {
  c.on('log', ({ text }) => log(text));
  c.on('status', ({ state, text }) => setStatus(text, state));
  c.on('notice', ({ text }) => notice(text));
  c.on('open', () => {
    $('leave').disabled = false;
    $('mute-audio').disabled = c.localStream.getAudioTracks().length === 0;
    $('mute-video').disabled = c.localStream.getVideoTracks().length === 0;
    $('share-screen').disabled = !navigator.mediaDevices.getDisplayMedia;
    $('chat-toggle').disabled = false;
  });
  c.on('participant', onParticipant);
  c.on('participant-left', onParticipantLeft);
  c.on('self', ({ participant }) => showMuted(document.querySelector('.tile.local'), participant));
  c.on('track', onTrack);
  c.on('track-ended', onTrackEnded);
  c.on('speakers', onSpeakers);
  c.on('muted', ({ kind, muted }) => showMuteButton(kind, muted));
  c.on('screen', showScreenButton);
  c.on('local-stream', ({ stream }) => showLocal(stream));
  c.on('data', onData);
  c.on('recording', ({ active }) => { $('recording').hidden = !active; });
  c.on('descriptions', () => {
    $('local-sdp').value = c.pc?.localDescription?.sdp || '';
    $('remote-sdp').value = c.pc?.remoteDescription?.sdp || '';
  });
  c.on('selected-pair', ({ text }) => { $('selected-pair').textContent = text; });
  c.on('connection', () => { if (!c.selectedPair) $('selected-pair').textContent = 'none yet'; });
  c.on('ended', () => teardown());
}

async function join(event) {
  event.preventDefault();
  const room = $('room').value.trim();
  const name = $('name').value.trim();
  notice('');
  $('join').disabled = true;
  setStatus('Starting camera…', 'connecting');
  const simulcast = params.get('simulcast') !== '0';
  const opened = await openDevices({ camera: $('use-camera').checked, mic: $('use-mic').checked, simulcast });
  if (opened.notice) notice(opened.notice);
  client = new RoomcastClient({ token: params.get('token'), relayOnly: $('relay').checked, simulcast });
  window.roomcast = client; // for the end-to-end tests and for curious operators
  wire(client);
  const self = tile('self', name || 'Guest', { local: true });
  self.querySelector('video').srcObject = opened.stream;
  self.classList.toggle('no-camera', opened.stream.getVideoTracks().length === 0);
  history.replaceState(null, '', `?${new URLSearchParams({ ...Object.fromEntries(params), room })}`);
  client.join(room, { name, stream: opened.stream });
  listDevices();
}

// The page after a session ended for good: the form again, everything else reset.
function teardown() {
  for (const id of [...views.keys()]) onParticipantLeft({ id });
  $('tiles').replaceChildren();
  $('share-screen').disabled = true;
  $('camera-select').hidden = true;
  $('mic-select').hidden = true;
  $('join').disabled = false;
  $('leave').disabled = true;
  $('chat-toggle').disabled = true;
  $('recording').hidden = true;
  showChat(false);
  for (const kind of ['audio', 'video']) {
    $(`mute-${kind}`).disabled = true;
    showMuteButton(kind, false);
  }
  ui.floor = null;
}

$('join-form').addEventListener('submit', join);
$('leave').addEventListener('click', () => client?.leave());
$('mute-audio').addEventListener('click', () => client?.setMuted('audio', !client.muted.audio));
$('mute-video').addEventListener('click', () => client?.setMuted('video', !client.muted.video));
$('camera-select').addEventListener('change', (e) => switchDevice('video', e.target.value));
$('mic-select').addEventListener('change', (e) => switchDevice('audio', e.target.value));
navigator.mediaDevices?.addEventListener?.('devicechange', () => { if (client?.localStream) listDevices(); });
$('share-screen').addEventListener('click', () => (client?.screen ? client.stopScreen() : client?.shareScreen().catch((e) => notice(`Screen sharing unavailable: ${e.message}`))));
$('view-toggle').addEventListener('click', () => setSpeakerView(!ui.speakerView));
$('chat-toggle').addEventListener('click', () => showChat($('chat').hidden));
$('chat-form').addEventListener('submit', sendChat);
$('room').value = params.get('room') || '';
$('name').value = params.get('name') || '';
$('relay').checked = params.get('relay') === '1';
$('use-camera').checked = params.get('camera') !== '0';
$('use-mic').checked = params.get('mic') !== '0';
if (params.get('view') === 'speaker') setSpeakerView(true);
window.addEventListener('pagehide', () => client?.send({ type: 'leave' }));
