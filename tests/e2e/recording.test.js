// End-to-end: recording. An operator records a room through the admin API; each participant's
// page says so; each participant gets one WebM file (VP8 + Opus) that ffprobe and ffmpeg read
// back: the right codecs, the right duration, every frame decodable, audio and video starting
// together.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

async function api(server, method, route) {
  const res = await fetch(`${server.http}${route}`, { method });
  const text = await res.text();
  return { status: res.status, body: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

/** What ffprobe says of a file: its streams by codec, their start times and the duration. */
function probe(file) {
  const out = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', file]));
  const streams = Object.fromEntries(out.streams.map((s) => [s.codec_name, s]));
  return { streams, duration: Number(out.format.duration), codecs: out.streams.map((s) => s.codec_name).sort() };
}

/** ffmpeg's complaints while decoding every frame: empty when all decode. */
function decodeErrors(file) {
  return execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString()
    + '';
}

function decodeAll(file) {
  const { spawnSync } = require('node:child_process');
  const r = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-']);
  return { code: r.status, errors: r.stderr.toString().trim() };
}

async function recordingVisible(page) {
  return page.evaluate(() => !document.getElementById('recording').hidden);
}

test('a recorded room gives each participant a WebM of VP8 and Opus that plays from start to end', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roomcast-rec-'));
  const server = await h.startServer(['--recordings-dir', dir]);
  try {
    const people = [];
    for (const name of ['Ada', 'Bob']) {
      const p = await h.openParticipant(browser, server.http);
      await h.join(p.page, 'rec', name);
      people.push(p);
    }
    await h.waitFor('each to decode the other', async () => (await h.inboundVideoOf(people[0].page, 'Bob'))?.frames > 10
      && (await h.inboundVideoOf(people[1].page, 'Ada'))?.frames > 10);

    const started = await api(server, 'POST', '/api/rooms/rec/recording');
    assert.equal(started.status, 201, JSON.stringify(started.body));
    for (const { page } of people) await h.waitFor('the page to say the room is recorded', () => recordingVisible(page));
    await h.screenshot(people[0].page, 'recording-banner');
    await h.sleep(10000);
    assert.equal((await api(server, 'DELETE', '/api/rooms/rec/recording')).status, 204);
    for (const { page } of people) await h.waitFor('the page to say recording stopped', async () => !(await recordingVisible(page)));

    const files = await h.waitFor('both files complete', async () => {
      const list = (await api(server, 'GET', '/api/recordings')).body;
      return list.length === 2 && list.every((f) => f.state === 'complete') && list;
    });
    console.log('recording: files', JSON.stringify(files));
    for (const f of files) {
      const file = path.join(dir, `${f.id}.webm`);
      const p = probe(file);
      const starts = Object.fromEntries(Object.entries(p.streams).map(([c, s]) => [c, Number(s.start_time)]));
      const decoded = decodeAll(file);
      console.log(`recording: ${f.participant_name}: ${p.codecs.join('+')}, ${p.duration.toFixed(2)} s, starts ${JSON.stringify(starts)}, ${f.size} bytes, decode ${decoded.code} ${decoded.errors}`);
      assert.deepEqual(p.codecs, ['opus', 'vp8']);
      assert.ok(Math.abs(p.duration - 10) <= 1, `duration ${p.duration} s is 10 ± 1 s`);
      assert.equal(decoded.code, 0);
      assert.equal(decoded.errors, '', 'every frame decodes');
      assert.ok(Math.abs(starts.vp8 - starts.opus) <= 0.1, `audio and video start together: ${JSON.stringify(starts)}`);
      assert.deepEqual(f.kinds.sort(), ['audio', 'video']);
    }
  } finally {
    await server.stop();
    if (!process.env.KEEP_RECORDINGS) fs.rmSync(dir, { recursive: true, force: true });
  }
});
