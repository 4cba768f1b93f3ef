// End-to-end: recording. An operator records a room from the dashboard or the admin API; each
// participant's page says so; each participant gets one WebM file (VP8 + Opus) that ffprobe and
// ffmpeg read back: the right codecs and duration, every frame decodable, audio and video starting
// together. Also: a recording started before anyone publishes, joins and leaves during one,
// stops while the first keyframe is on its way, and a disk that fills up.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
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

const recordings = async (server) => (await api(server, 'GET', '/api/recordings')).body;

/** What ffprobe says of a file: codecs, each stream's start time, the duration. */
function probe(file) {
  const out = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', file]));
  return {
    codecs: out.streams.map((s) => s.codec_name).sort(),
    starts: Object.fromEntries(out.streams.map((s) => [s.codec_name, Number(s.start_time)])),
    duration: Number(out.format.duration),
  };
}

/** Decodes every frame (any decoding error is fatal: -err_detect explode) and returns what
 * ffmpeg printed at level error: nothing for a good file. `-enc_time_base:v -1` keeps the null
 * output's timestamps in the file's milliseconds: without it ffmpeg 5.1 rounds them to the frame
 * rate it guesses (20/s for the fake camera) and complains of two frames in one tick whenever the
 * camera's capture times jitter, which says nothing about the file. */
function decodeErrors(file) {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-err_detect', 'explode', '-i', file, '-enc_time_base:v', '-1', '-f', 'null', '-']);
  return `${r.status === 0 ? '' : `exit ${r.status} `}${r.stderr.toString().trim()}`;
}

/** Checks one complete file of a publisher with camera and microphone; returns its probe. */
function checkFile(dir, f) {
  const file = path.join(dir, `${f.id}.webm`);
  const p = probe(file);
  const errors = decodeErrors(file);
  console.log(`recording: ${f.participant_name}: ${p.codecs.join('+')}, ${p.duration.toFixed(2)} s (listed ${f.duration_ms} ms), starts ${JSON.stringify(p.starts)}, ${f.size} bytes ${errors}`);
  assert.deepEqual(p.codecs, ['opus', 'vp8']);
  assert.deepEqual([...f.kinds].sort(), ['audio', 'video']);
  assert.equal(errors, '', 'every frame decodes');
  assert.ok(Math.abs(p.starts.vp8 - p.starts.opus) <= 0.1, `audio and video start together: ${JSON.stringify(p.starts)}`);
  assert.equal(f.size, fs.statSync(file).size);
  return p;
}

const bannerShown = (page) => page.evaluate(() => !document.getElementById('recording').hidden);

async function framesOf(page, name) { return (await h.inboundVideoOf(page, name))?.frames || 0; }

async function room(server, names, roomId, query = '') {
  const people = {};
  for (const name of names) {
    const p = await h.openParticipant(browser, `${server.http}/${query}`);
    await h.join(p.page, roomId, name);
    people[name] = p;
  }
  return people;
}

function tempDir() { return fs.mkdtempSync(path.join(os.tmpdir(), 'roomcast-rec-')); }

test('ten seconds recorded from the dashboard: one WebM per participant, VP8 + Opus, 10 ± 1 s, decodable, A/V together', async () => {
  const dir = tempDir();
  const server = await h.startServer(['--recordings-dir', dir]);
  try {
    const { Ada, Bob } = await room(server, ['Ada', 'Bob'], 'rec');
    await h.waitFor('each to decode the other', async () => await framesOf(Ada.page, 'Bob') > 10 && await framesOf(Bob.page, 'Ada') > 10);
    const admin = await h.openParticipant(browser, `${server.http}/admin`);
    await h.waitFor('the room on the dashboard', () => admin.page.$('section.room[data-room="rec"] button.record'));

    await admin.page.click('section.room[data-room="rec"] button.record');
    const startedAt = Date.now();
    for (const { page } of [Ada, Bob]) await h.waitFor('the page to say the room is recorded', () => bannerShown(page));
    await h.waitFor('the dashboard to show the room recording', () => admin.page.$('section.room[data-room="rec"] .rec-badge'));
    await h.screenshot(Ada.page, 'recording-banner');
    await h.screenshot(admin.page, 'recording-dashboard-live');
    await h.sleep(10000 - (Date.now() - startedAt));
    await admin.page.click('section.room[data-room="rec"] button.record.recording');
    for (const { page } of [Ada, Bob]) await h.waitFor('the page to say recording stopped', async () => !(await bannerShown(page)));

    const files = await h.waitFor('both files complete', async () => {
      const list = await recordings(server);
      return list.length === 2 && list.every((f) => f.state === 'complete') && list;
    });
    assert.deepEqual(files.map((f) => f.participant_name).sort(), ['Ada', 'Bob']);
    for (const f of files) {
      const p = checkFile(dir, f);
      assert.ok(Math.abs(p.duration - 10) <= 1, `duration ${p.duration} s is 10 ± 1 s`);
    }
    await h.waitFor('the recordings on the dashboard', async () => (await admin.page.$$('tr[data-recording]')).length === 2);
    await h.screenshot(admin.page, 'recording-dashboard');
    for (const p of [Ada, Bob, admin]) await p.context.close();
  } finally {
    await server.stop();
    if (!process.env.KEEP_RECORDINGS) fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('recording before anyone publishes; a newcomer is told and recorded from when it publishes; a leaver\'s file ends', async () => {
  const dir = tempDir();
  const server = await h.startServer(['--recordings-dir', dir]);
  try {
    const { Viv } = await room(server, ['Viv'], 'late', '?camera=0&mic=0');
    await h.waitFor('the room to exist', async () => (await api(server, 'GET', '/api/rooms/late')).status === 200);
    assert.equal((await api(server, 'POST', '/api/rooms/late/recording')).status, 201);
    assert.equal((await api(server, 'POST', '/api/rooms/late/recording')).status, 409, 'one recording at a time');
    await h.waitFor('the viewer to be told', () => bannerShown(Viv.page));

    // Each file must lie between pressing Join and the end, and cover at least from when the
    // viewer sees that participant's video to the end.
    const bobJoinedAt = Date.now();
    const { Bob } = await room(server, ['Bob'], 'late');
    await h.waitFor('Viv to see Bob', async () => await framesOf(Viv.page, 'Bob') > 0, { interval: 50 });
    const bobSeenAt = Date.now();
    const cyJoinedAt = Date.now();
    const { Cy } = await room(server, ['Cy'], 'late');
    await h.waitFor('Viv to see Cy', async () => await framesOf(Viv.page, 'Cy') > 0, { interval: 50 });
    const cySeenAt = Date.now();
    for (const { page } of [Bob, Cy]) await h.waitFor('a newcomer to be told at once', () => bannerShown(page));
    await h.sleep(4000);
    await Cy.page.click('#leave');
    const cyLeftAt = Date.now();
    await h.sleep(3000);
    assert.equal((await api(server, 'DELETE', '/api/rooms/late/recording')).status, 204);
    const stoppedAt = Date.now();
    assert.equal((await api(server, 'DELETE', '/api/rooms/late/recording')).status, 409);

    const files = await h.waitFor('two complete files', async () => {
      const list = await recordings(server);
      return list.length === 2 && list.every((f) => f.state === 'complete') && list;
    });
    assert.deepEqual(files.map((f) => f.participant_name).sort(), ['Bob', 'Cy'], 'a viewer publishes nothing to record');
    const bob = checkFile(dir, files.find((f) => f.participant_name === 'Bob'));
    const cy = checkFile(dir, files.find((f) => f.participant_name === 'Cy'));
    // From the click on Join (publishing starts a little after it) to the stop, or to the leave.
    const bobSpan = (stoppedAt - bobJoinedAt) / 1000;
    const cySpan = (cyLeftAt - cyJoinedAt) / 1000;
    const bobSeen = (stoppedAt - bobSeenAt) / 1000;
    const cySeen = (cyLeftAt - cySeenAt) / 1000;
    console.log(`recording: Bob joined ${bobSpan.toFixed(2)} s and seen ${bobSeen.toFixed(2)} s before the stop, file ${bob.duration} s; Cy ${cySpan.toFixed(2)} s / ${cySeen.toFixed(2)} s before leaving, file ${cy.duration} s`);
    // At most 1 s longer, as for the ten-second recording: a file holds what was captured, and on
    // a loaded machine the browser's media lags its capture by up to a second or so. At most 1 s
    // shorter than the others saw: a file starts at the first keyframe the recorder gets, the
    // one the viewer starts with (within ±0.05 s on an idle machine). It was 0.5–2.3 s later
    // while a move to a higher simulcast layer before the file started dropped what was held.
    assert.ok(bob.duration <= bobSpan + 1 && bob.duration >= bobSeen - 1, `Bob's file (${bob.duration} s) runs from his publishing to the stop`);
    assert.ok(cy.duration <= cySpan + 1 && cy.duration >= cySeen - 1, `Cy's file (${cy.duration} s) ends when Cy left`);
    for (const p of [Viv, Bob, Cy]) await p.context.close();
  } finally {
    await server.stop();
    if (!process.env.KEEP_RECORDINGS) fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('stopping while the first keyframe is on its way leaves no broken file, the media goes on, and a server stopped while recording closes its files', async () => {
  const dir = tempDir();
  const server = await h.startServer(['--recordings-dir', dir]);
  try {
    const { Ada, Bob } = await room(server, ['Ada', 'Bob'], 'quick');
    await h.waitFor('Bob to decode Ada', async () => await framesOf(Bob.page, 'Ada') > 10);
    // Starting asks each publisher for a keyframe; stopping 0.05 to 1.5 s later catches it on
    // its way, in the reassembler, or just written.
    for (const ms of [50, 300, 700, 1500]) {
      assert.equal((await api(server, 'POST', '/api/rooms/quick/recording')).status, 201);
      await h.sleep(ms);
      assert.equal((await api(server, 'DELETE', '/api/rooms/quick/recording')).status, 204);
    }
    await h.sleep(500);
    const files = await recordings(server);
    console.log(`recording: quick stops left ${files.length} files: ${files.map((f) => `${f.state} ${f.duration_ms} ms ${f.kinds}`).join(', ')}`);
    for (const f of files) {
      assert.equal(f.state, 'complete');
      const errors = decodeErrors(path.join(dir, `${f.id}.webm`));
      assert.equal(errors, '', `${f.id} decodes`);
    }
    const before = await framesOf(Bob.page, 'Ada');
    await h.sleep(1000);
    assert.ok(await framesOf(Bob.page, 'Ada') > before + 5, 'Bob still decodes Ada');

    // A server stopped (SIGTERM) while recording closes its files first.
    assert.equal((await api(server, 'POST', '/api/rooms/quick/recording')).status, 201);
    await h.waitFor('two files being written', async () => (await recordings(server)).filter((f) => f.state === 'recording').length === 2);
    await h.sleep(1000);
    assert.equal(await server.stop(), 0);
    const metas = fs.readdirSync(dir).filter((n) => n.endsWith('.meta')).map((n) => fs.readFileSync(path.join(dir, n), 'utf8'));
    const states = metas.map((m) => /state=(\w+)/.exec(m)[1]);
    assert.deepEqual([...new Set(states)], ['complete'], 'every file closed on the way out');
    for (const n of fs.readdirSync(dir).filter((f) => f.endsWith('.webm'))) {
      assert.equal(decodeErrors(path.join(dir, n)), '', `${n} decodes`);
    }
    for (const p of [Ada, Bob]) await p.context.close();
  } finally {
    await server.stop();
    if (!process.env.KEEP_RECORDINGS) fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A server whose recordings directory is a 600 KB tmpfs, so that two files fill it within
 * seconds. Returns the server and where this process reads the directory, or null where nothing
 * may mount. Mounting in place needs CAP_SYS_ADMIN (root on a machine, not always in a
 * container); without it the server runs in a user and mount namespace of its own, where the
 * tmpfs is seen only by it and read here through /proc/<pid>/root. */
async function serverOnSmallDisk(dir) {
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=600k', 'tmpfs', dir]).status === 0) {
    return { server: await h.startServer(['--recordings-dir', dir]), seen: dir, unmount: () => spawnSync('umount', [dir]) };
  }
  const wrap = ['unshare', '--user', '--map-root-user', '--mount', 'sh', '-c', 'mount -t tmpfs -o size=600k tmpfs "$0" && exec "$@"', dir];
  try {
    const server = await h.startServer(['--recordings-dir', dir], { wrap });
    return { server, seen: `/proc/${server.pid}/root${dir}`, unmount: () => {} };
  } catch (e) {
    console.log(`recording: no tmpfs could be mounted here: ${e.message.split('\n').slice(0, 3).join(' ')}`);
    return null;
  }
}

test('a disk that fills up stops the recording with one clear log line and a dashboard event; the room goes on', async (t) => {
  const dir = tempDir();
  const disk = await serverOnSmallDisk(dir);
  if (!disk) {
    fs.rmSync(dir, { recursive: true, force: true });
    t.skip('neither mount nor an unprivileged mount namespace is allowed here');
    return;
  }
  const { server } = disk;
  try {
    const { Ada, Bob } = await room(server, ['Ada', 'Bob'], 'full');
    await h.waitFor('each to decode the other', async () => await framesOf(Ada.page, 'Bob') > 10 && await framesOf(Bob.page, 'Ada') > 10);
    assert.equal((await api(server, 'POST', '/api/rooms/full/recording')).status, 201);
    await h.waitFor('the pages to be told', async () => await bannerShown(Ada.page) && await bannerShown(Bob.page));
    const failed = await h.waitFor('the recording to fail', async () => {
      const list = await recordings(server);
      return list.find((f) => f.state === 'failed');
    }, { timeout: 60000 });
    console.log(`recording: disk full: ${JSON.stringify(failed)}`);
    assert.match(failed.error, /No space left on device/);
    await h.waitFor('the pages to be told it stopped', async () => !(await bannerShown(Ada.page)) && !(await bannerShown(Bob.page)));
    assert.equal((await api(server, 'GET', '/api/rooms/full')).body.recording, false);
    const lines = server.logs().split('\n').filter((l) => l.includes('recording stopped: could not write'));
    console.log(`recording: ${lines.join('\n')}`);
    assert.equal(lines.length, 1, 'one clear log line');
    assert.match(lines[0], /No space left on device/);
    const before = await framesOf(Bob.page, 'Ada');
    await h.sleep(1500);
    assert.ok(await framesOf(Bob.page, 'Ada') > before + 10, 'the room\'s media is untouched');
    // What the file holds up to the failure still plays.
    const partial = await recordings(server);
    for (const f of partial) {
      const errors = decodeErrors(path.join(disk.seen, `${f.id}.webm`));
      console.log(`recording: the failed recording's ${f.participant_name}: ${f.size} bytes, ${f.state}, decode: ${errors || 'clean'}`);
      const unexpected = errors.split('\n').filter((l) => l && !/File ended prematurely/.test(l));
      assert.deepEqual(unexpected, [], 'a file cut short by the full disk decodes up to where it ends');
    }
    const admin = await h.openParticipant(browser, `${server.http}/admin`);
    await h.waitFor('the event on the dashboard', () => admin.page.$eval('#events', (e) => !e.hidden && e.textContent));
    assert.match(await admin.page.textContent('#events'), /No space left on device/);
    await h.screenshot(admin.page, 'recording-disk-full');
    for (const p of [Ada, Bob, admin]) await p.context.close();
  } finally {
    await server.stop();
    disk.unmount();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a server killed while recording leaves files that play up to the last second, marked interrupted at the next start', async () => {
  const dir = tempDir();
  let server = await h.startServer(['--recordings-dir', dir]);
  try {
    const { Ada, Bob } = await room(server, ['Ada', 'Bob'], 'crash');
    await h.waitFor('each to decode the other', async () => await framesOf(Ada.page, 'Bob') > 10 && await framesOf(Bob.page, 'Ada') > 10);
    assert.equal((await api(server, 'POST', '/api/rooms/crash/recording')).status, 201);
    await h.waitFor('two files written to for 3 s', async () => {
      const list = await recordings(server);
      return list.length === 2 && list.every((f) => f.duration_ms >= 3000);
    }, { timeout: 30000 });
    const killedAt = Date.now();
    process.kill(server.pid, 'SIGKILL');
    await h.waitFor('the server to be gone', () => fetch(`${server.http}/healthz`).then(() => false, () => true));
    for (const p of [Ada, Bob]) await p.context.close();

    server = await h.startServer(['--recordings-dir', dir]);
    const files = await recordings(server);
    assert.equal(files.length, 2);
    for (const f of files) {
      assert.equal(f.state, 'interrupted');
      const file = path.join(dir, `${f.id}.webm`);
      const p = probe(file);
      const packets = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-count_packets', '-show_entries', 'stream=codec_name,nb_read_packets', '-of', 'json', file])).streams;
      const audioSeconds = Number(packets.find((s) => s.codec_name === 'opus').nb_read_packets) * 0.02;
      console.log(`recording: after kill -9, ${f.participant_name}: ${p.codecs.join('+')}, ${audioSeconds.toFixed(2)} s of audio, listed ${f.duration_ms} ms, ${decodeErrors(file) || 'decodes cleanly'}`);
      assert.deepEqual(p.codecs, ['opus', 'vp8']);
      assert.equal(decodeErrors(file), '', 'what reached the disk plays');
      const recordedFor = (killedAt - f.started_ms) / 1000;
      assert.ok(audioSeconds >= recordedFor - 2.5, `at most the last seconds lost: ${audioSeconds} s of ${recordedFor} s`);
      assert.equal((await api(server, 'DELETE', `/api/recordings/${f.id}`)).status, 204, 'an interrupted file can be deleted');
    }
  } finally {
    await server.stop();
    if (!process.env.KEEP_RECORDINGS) fs.rmSync(dir, { recursive: true, force: true });
  }
});
