// End-to-end: a subscriber on aiortc (PyPI), a WebRTC stack that shares no code with webrtc-rs or
// Chromium, in a room with two Chromium publishers. It must decode both, from the first second:
// before the forwarder dropped publishers' padding probes, aiortc took the first padding-only
// packet for an empty frame, its decoder for end-of-stream, and decoded nothing more from that
// publisher in about half the runs.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');
const h = require('./harness');

const SUBSCRIBER = path.join(__dirname, '..', 'aiortc', 'subscriber.py');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

/** Runs the aiortc subscriber in `room` for `seconds`; resolves with what it decoded per track. */
function aiortcSubscriber(server, room, seconds) {
  const ws = `${server.http.replace('http://', 'ws://')}/ws`;
  return new Promise((resolve, reject) => {
    execFile('python3', [SUBSCRIBER, ws, room, String(seconds)], { timeout: (seconds + 30) * 1000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`aiortc subscriber failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()));
    });
  });
}

test('an aiortc subscriber decodes both Chromium publishers, each within a second of media being able to flow', async () => {
  const server = await h.startServer();
  try {
    const people = [];
    for (const name of ['Ada', 'Bob']) {
      const p = await h.openParticipant(browser, server.http);
      await h.join(p.page, 'mixed-stacks', name);
      people.push(p);
    }
    await h.waitFor('Ada and Bob to see each other', async () => {
      const seen = await Promise.all(people.map(async ({ page }) => (await h.remoteTiles(page)).some((t) => t.videoWidth > 0)));
      return seen.every(Boolean);
    });
    const decoded = await aiortcSubscriber(server, 'mixed-stacks', 15);
    console.log(`aiortc decoded: ${JSON.stringify(decoded)}`);
    const tracks = Object.values(decoded);
    assert.equal(tracks.length, 2, 'one video track per publisher');
    for (const t of tracks) {
      assert.ok(t.frames >= 100, `at least 100 frames (≈ 7 of the 15 s at 15 frames/s) decoded: ${JSON.stringify(decoded)}`);
      assert.ok(t.first_after !== null && t.first_after <= 1.0, `first frame within 1 s of media being able to flow: ${JSON.stringify(decoded)}`);
    }
    for (const { context } of people) await context.close();
  } finally {
    assert.equal(await server.stop(), 0);
  }
});
