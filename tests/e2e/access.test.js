// End-to-end: room access tokens through the client page. Without a token the page says why it
// cannot join; with one minted by `roomcast token` (the page reads it from ?token=) the holder gets
// in under the token's identity, and a viewer token receives without publishing.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const h = require('./harness');

const SECRET = 'e2e-room-token-secret';
let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

function mint(room, identity, ...flags) {
  return execFileSync(h.BINARY, ['token', '--room', room, '--identity', identity, '--ttl', '10m', ...flags],
    { env: { ...process.env, ROOMCAST_TOKEN_SECRET: SECRET } }).toString().trim();
}

test('with room tokens, only a token holder gets in, under the token\'s identity', async () => {
  const server = await h.startServer(['--token-secret', SECRET]);
  try {
    const stranger = await h.openParticipant(browser, server.http);
    await h.join(stranger.page, 'board', 'Stranger');
    const refusal = await h.waitFor('the refusal', () => stranger.page.$eval('#notice', (n) => !n.hidden && n.textContent));
    assert.match(refusal, /^A room token is required/);
    await h.screenshot(stranger.page, 'token-required');

    const ada = await h.openParticipant(browser, `${server.http}/?token=${mint('board', 'Ada Lovelace')}`);
    await h.join(ada.page, 'board', 'Whatever');
    const viewer = await h.openParticipant(browser, `${server.http}/?token=${mint('board', 'Viewer', '--no-publish')}`);
    await h.join(viewer.page, 'board', '');
    await h.waitFor('the viewer to see Ada', async () => (await h.remoteTiles(viewer.page)).some((t) => t.name === 'Ada Lovelace' && t.videoWidth > 0), { timeout: 30000 });
    await h.sleep(2000);
    const adaSees = await h.remoteTiles(ada.page);
    assert.ok(adaSees.every((t) => t.videoWidth === 0), `Ada receives no video from a viewer: ${JSON.stringify(adaSees)}`);
    // Not even uploaded to be dropped: the server answers the viewer's sending sections inactive.
    const uploaded = await viewer.page.evaluate(async () => {
      let bytes = 0;
      (await window.roomcast.pc.getStats()).forEach((r) => { if (r.type === 'outbound-rtp') bytes += r.bytesSent || 0; });
      return bytes;
    });
    assert.equal(uploaded, 0, 'no media leaves the viewer\'s browser');
    for (const { context } of [stranger, ada, viewer]) await context.close();
  } finally {
    await server.stop();
  }
});
