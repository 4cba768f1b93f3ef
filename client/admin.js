// roomcast operators' dashboard: polls the admin API every second, keeps a minute of bitrate
// history per track, and offers kick / close-room / record actions and the recordings (download,
// delete; a recording stopped by a write error shows as an event). No framework, no build step.
'use strict';

const POLL_MS = 1000;
const HISTORY_MS = 60000;
const $ = (id) => document.getElementById(id);
const history = new Map(); // track key -> [{ t, bps }]
let token = sessionStorage.getItem('roomcast-admin-token') || '';
let lastOk = 0;

function headers() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function api(method, path) {
  const response = await fetch(path, { method, headers: headers() });
  if (response.status === 401) {
    $('auth').hidden = false;
    $('auth-message').textContent = token ? 'That token was refused.' : 'This server needs an admin token.';
    throw new Error('unauthorized');
  }
  if (!response.ok && response.status !== 404) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.message || `${method} ${path}: ${response.status}`);
  }
  return response;
}

function kbps(bps) {
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(2)} Mbit/s` : `${Math.round(bps / 1e3)} kbit/s`;
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}

function remember(key, bps, now) {
  const series = history.get(key) || [];
  series.push({ t: now, bps });
  while (series.length && now - series[0].t > HISTORY_MS) series.shift();
  history.set(key, series);
  return series;
}

function plot(series) {
  const canvas = el('canvas', { width: 160, height: 28 });
  const ctx = canvas.getContext('2d');
  const max = Math.max(1, ...series.map((p) => p.bps));
  const now = Date.now();
  ctx.strokeStyle = '#8ab4f8';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  series.forEach((p, i) => {
    const x = 160 - ((now - p.t) / HISTORY_MS) * 160;
    const y = 26 - (p.bps / max) * 24;
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  return canvas;
}

function trackRow(track, direction, now) {
  const series = remember(`${direction}:${track.id}`, track.bitrate_bps, now);
  const details = [track.codec, `${track.packets} pkts`, `lost ${track.packets_lost}`, `jitter ${track.jitter_ms.toFixed(1)} ms`];
  if (track.rtt_ms != null) details.push(`rtt ${track.rtt_ms.toFixed(1)} ms`);
  const rate = el('span', { className: `bitrate bitrate-${direction}`, textContent: kbps(track.bitrate_bps) });
  rate.dataset.bps = track.bitrate_bps;
  return el('div', { className: 'track', title: details.join(' · ') },
    el('span', { textContent: `${direction === 'in' ? '▲' : '▼'} ${track.kind}` }), rate, plot(series),
    el('code', { textContent: details.join(' · ') }));
}

function participantRow(room, p, now) {
  const kick = el('button', { className: 'danger', textContent: 'Kick' });
  kick.onclick = async () => {
    if (!confirm(`Kick ${p.name} from ${room.id}?`)) return;
    await api('DELETE', `/api/rooms/${encodeURIComponent(room.id)}/participants/${encodeURIComponent(p.id)}`);
    refresh();
  };
  const tracks = el('div', { className: 'tracks' },
    ...p.published.map((t) => trackRow(t, 'in', now)),
    ...p.forwarded.map((t) => trackRow(t, 'out', now)));
  const candidate = p.candidate ? `${p.candidate.remote} → ${p.candidate.local}` : '—';
  const row = el('tr', {},
    el('td', {}, el('strong', { textContent: p.name }), el('br'), el('code', { textContent: p.id })),
    el('td', { className: `state-${p.connection_state}`, textContent: p.connection_state }),
    el('td', { textContent: candidate }),
    el('td', { textContent: new Date(p.joined_ms).toLocaleTimeString() }),
    el('td', {}, tracks),
    el('td', {}, kick));
  row.dataset.participant = p.id;
  row.className = 'participant';
  return row;
}

function recordButton(room) {
  const button = el('button', {
    className: room.recording ? 'record recording' : 'record',
    textContent: room.recording ? '■ Stop recording' : '● Record',
  });
  button.onclick = async () => {
    await api(room.recording ? 'DELETE' : 'POST', `/api/rooms/${encodeURIComponent(room.id)}/recording`);
    refresh();
  };
  return button;
}

function roomCard(room, now) {
  const close = el('button', { className: 'danger', textContent: 'Close room' });
  close.onclick = async () => {
    if (!confirm(`Close room ${room.id} for all ${room.participant_count} participants?`)) return;
    await api('DELETE', `/api/rooms/${encodeURIComponent(room.id)}`);
    refresh();
  };
  const badge = room.recording ? [el('span', { className: 'rec-badge', textContent: '● REC' })] : [];
  const head = el('tr', {}, ...['Participant', 'State', 'Candidates (client → server)', 'Joined', 'Tracks (▲ in, ▼ out)', ''].map((h) => el('th', { textContent: h })));
  const card = el('section', { className: 'room' },
    el('h2', {}, el('span', { textContent: room.id }),
      ...badge,
      el('span', { className: 'meta', textContent: `${room.participant_count} participants · since ${new Date(room.created_ms).toLocaleTimeString()}` }), recordButton(room), close),
    el('table', {}, el('thead', {}, head), el('tbody', {}, ...room.participants.map((p) => participantRow(room, p, now)))));
  card.dataset.room = room.id;
  return card;
}

function bytes(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`;
}

/** Downloads through fetch, so the admin token goes along as a header, never in a URL. */
async function download(file) {
  const blob = await (await api('GET', `/api/recordings/${encodeURIComponent(file.id)}`)).blob();
  const link = el('a', { href: URL.createObjectURL(blob), download: `${file.id}.webm` });
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function recordingRow(file) {
  const get = el('button', { textContent: 'Download' });
  get.onclick = () => download(file).catch((e) => console.warn(e));
  const remove = el('button', { className: 'danger', textContent: 'Delete', disabled: file.state === 'recording' });
  remove.onclick = async () => {
    if (!confirm(`Delete ${file.participant_name}'s recording of ${file.room}?`)) return;
    await api('DELETE', `/api/recordings/${encodeURIComponent(file.id)}`);
    refresh();
  };
  const state = el('td', { className: `rec-${file.state}`, textContent: file.state, title: file.error || '' });
  const row = el('tr', {},
    el('td', {}, el('strong', { textContent: file.participant_name }), el('br'), el('code', { textContent: file.participant_id })),
    el('td', { textContent: file.room }),
    el('td', { textContent: file.kinds.join(' + ') }),
    el('td', { textContent: new Date(file.started_ms).toLocaleString() }),
    el('td', { textContent: `${(file.duration_ms / 1000).toFixed(1)} s` }),
    el('td', { textContent: bytes(file.size) }),
    state,
    el('td', {}, get, remove));
  row.dataset.recording = file.id;
  return row;
}

function showRecordings(files) {
  const head = el('tr', {}, ...['Participant', 'Room', 'Kinds', 'Started', 'Duration', 'Size', 'State', ''].map((h) => el('th', { textContent: h })));
  $('recordings').replaceChildren(files.length
    ? el('table', {}, el('thead', {}, head), el('tbody', {}, ...files.map(recordingRow)))
    : el('p', { className: 'empty', textContent: 'No recordings yet.' }));
  // A recording stopped by a write error (a full disk) is an event the operator must see.
  const failed = files.filter((f) => f.state === 'failed');
  $('events').hidden = !failed.length;
  $('events').replaceChildren(...failed.slice(0, 5).map((f) => el('p', {
    textContent: `Recording of room ${f.room} stopped at ${new Date(f.started_ms + f.duration_ms).toLocaleTimeString()}: ${f.error || 'write error'} (${f.participant_name}'s file kept up to there)`,
  })));
}

async function refresh() {
  try {
    const rooms = await (await api('GET', '/api/rooms')).json();
    showRecordings(await (await api('GET', '/api/recordings')).json());
    const now = Date.now();
    const people = rooms.reduce((n, r) => n + r.participant_count, 0);
    const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
    $('summary').textContent = `${plural(rooms.length, 'room')} · ${plural(people, 'participant')}`;
    $('rooms').replaceChildren(...(rooms.length ? rooms.map((r) => roomCard(r, now)) : [el('p', { className: 'empty', textContent: 'No rooms right now.' })]));
    lastOk = now;
    $('auth').hidden = true;
  } catch (e) {
    if (e.message !== 'unauthorized') console.warn(e);
  }
  const age = Date.now() - lastOk;
  $('updated').textContent = lastOk ? `updated ${new Date(lastOk).toLocaleTimeString()}` : 'not connected';
  $('updated').classList.toggle('stale', age > 3 * POLL_MS);
}

$('auth').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  sessionStorage.setItem('roomcast-admin-token', token);
  refresh();
});

refresh();
setInterval(refresh, POLL_MS);
