// End-to-end: simulcast. A Chromium publisher sends three VP8 layers (q/h/f at 1/4, 1/2 and full
// resolution); the server keeps them together as one track and forwards each subscriber one
// layer, switching on keyframes without the subscriber's decoder noticing.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const h = require('./harness');

const SECRET = 'e2e-simulcast-secret';

/** A room token for `identity` (see access.test.js), with extra `roomcast token` flags. */
function mint(room, identity, ...flags) {
  return execFileSync(h.BINARY, ['token', '--room', room, '--identity', identity, '--ttl', '10m', ...flags],
    { env: { ...process.env, ROOMCAST_TOKEN_SECRET: SECRET } }).toString().trim();
}

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

/** What the publisher's page sends, per simulcast layer. */
async function outboundLayers(page) {
  return page.evaluate(async () => {
    const out = {};
    (await window.roomcast.pc.getStats()).forEach((r) => {
      if (r.type === 'outbound-rtp' && r.kind === 'video') out[r.rid || ''] = { width: r.frameWidth || 0, bytes: r.bytesSent || 0, limited: r.qualityLimitationReason };
    });
    return out;
  });
}

/** The video a subscriber's page receives: decoded size and frames, from getStats. */
async function inboundVideo(page) {
  return page.evaluate(async () => {
    let video = null;
    (await window.roomcast.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') video = { width: r.frameWidth || 0, frames: r.framesDecoded || 0, freezes: r.freezeCount || 0 };
    });
    return video;
  });
}

/** Clicks `name`'s tile in `page`, which enlarges it to the page's full width. */
/** A window in which an enlarged tile wants the top layer; in 1280×800 it is ≈ 830 px wide, and
 * the server sends it the 640-wide layer rather than twice the bits (see the allocator's
 * `tile_overshoot`). */
const LARGE_WINDOW = { width: 1600, height: 1000 };

async function enlarge(page, name) {
  await page.locator('.tile.remote', { has: page.locator('.name', { hasText: name }) }).click();
}

test('a three-layer publisher is one track on the server; a subscriber gets the layer its tile needs, full resolution once enlarged', async () => {
  const server = await h.startServer();
  try {
    const ada = await h.openParticipant(browser, server.http);
    await h.join(ada.page, 'layers', 'Ada');
    const bob = await h.openParticipant(browser, server.http);
    // A small window: the grid's tiles come out under 300 px wide.
    await bob.page.setViewportSize({ width: 600, height: 520 });
    await h.join(bob.page, 'layers', 'Bob');

    const sent = await h.waitFor('Ada to send three layers', async () => {
      const layers = await outboundLayers(ada.page);
      return ['q', 'h', 'f'].every((rid) => layers[rid]?.bytes > 0) && layers;
    }, { timeout: 30000 });
    assert.deepEqual([sent.q.width, sent.h.width].map((w) => w > 0 && w < 1280), [true, true]);

    const room = await h.waitFor('the server to know the three layers and their sizes', async () => {
      const r = await (await fetch(`${server.http}/api/rooms/layers`)).json();
      const video = r.participants.find((p) => p.name === 'Ada').published.find((t) => t.kind === 'video');
      return video.layers?.length === 3 && video.layers.every((l) => l.width > 0) && r;
    });
    const adaVideo = room.participants.find((p) => p.name === 'Ada').published.find((t) => t.kind === 'video');
    assert.deepEqual(adaVideo.layers.map((l) => l.rid), ['q', 'h', 'f']);
    assert.deepEqual(adaVideo.layers.map((l) => l.width), [320, 640, 1280]);

    // Bob's tile is under 300 × 225 px: the server picks the 320-wide layer (the 640 one would be
    // more than 1.5 × the tile both ways), and sends no larger one however long it waits.
    await h.waitFor('Bob to decode Ada at 320 wide', async () => (await inboundVideo(bob.page))?.width === 320, { timeout: 30000 });
    await h.sleep(4000);
    assert.equal((await forwardedLayer(server, 'layers', 'Bob', 'Ada')).layer, 0, 'no larger layer than the tile needs');
    assert.equal((await inboundVideo(bob.page)).width, 320);
    await h.screenshot(bob.page, 'simulcast-small-tile');
    // Enlarged in a large window: about 1200 × 675 px, which the top layer (1280 × 720) covers.
    await bob.page.setViewportSize(LARGE_WINDOW);
    await enlarge(bob.page, 'Ada');
    const full = await h.waitFor('Bob to decode Ada at 1280 wide', async () => {
      const v = await inboundVideo(bob.page);
      return v?.width === 1280 && v;
    }, { timeout: 30000 }).catch(async (e) => {
      // What the server saw, for a failure that only shows under load (the publisher's layers
      // and their bitrates, Bob's downlink estimate and forwarded layer).
      console.log(`server's room: ${JSON.stringify(await (await fetch(`${server.http}/api/rooms/layers`)).json())}`);
      console.log(`Ada sends: ${JSON.stringify(await outboundLayers(ada.page))}`);
      throw e;
    });
    await h.sleep(2000);
    const later = await inboundVideo(bob.page);
    assert.ok(later.frames - full.frames >= 20, `frames keep coming after the switch: ${JSON.stringify([full, later])}`);
    const tile = (await h.remoteTiles(bob.page)).find((t) => t.name === 'Ada');
    assert.equal(tile.videoWidth, 1280);
    await h.screenshot(bob.page, 'simulcast-full-resolution');

    const forwarded = (await (await fetch(`${server.http}/api/rooms/layers`)).json())
      .participants.find((p) => p.name === 'Bob').forwarded.find((t) => t.kind === 'video');
    assert.equal(forwarded.layer, 2, 'the server says it forwards the top layer');
    for (const { context } of [ada, bob]) await context.close();
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('a publisher without simulcast and one with it see each other', async () => {
  const server = await h.startServer();
  try {
    const plain = await h.openParticipant(browser, `${server.http}/?simulcast=0`);
    await h.join(plain.page, 'mixed', 'Plain');
    const layered = await h.openParticipant(browser, server.http);
    await h.join(layered.page, 'mixed', 'Layered');
    for (const [page, other] of [[plain.page, 'Layered'], [layered.page, 'Plain']]) {
      await h.waitFor(`${other} playing`, async () => (await h.remoteTiles(page)).some((t) => t.name === other && t.videoWidth > 0));
    }
    const plainOut = await outboundLayers(plain.page);
    assert.deepEqual(Object.keys(plainOut), [''], 'one stream, no RIDs');
    for (const { context } of [plain, layered]) await context.close();
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

/** Which layer the server forwards `subscriber` of `publisher`'s video, and its downlink estimate. */
async function forwardedLayer(server, room, subscriber, publisher) {
  const r = await (await fetch(`${server.http}/api/rooms/${room}`)).json();
  const sub = r.participants.find((p) => p.name === subscriber);
  const pub = r.participants.find((p) => p.name === publisher);
  const track = sub?.forwarded.find((t) => t.kind === 'video' && t.publisher === pub?.id);
  return { layer: track?.layer, downlinkBps: sub?.downlink_bps };
}

test('a subscriber whose downlink is policed to 400 kbit/s settles on a lower layer and keeps decoding, then climbs back', async () => {
  const server = await h.startServer(['--token-secret', SECRET]);
  let lift = null;
  try {
    const ada = await h.openParticipant(browser, `${server.http}/?token=${mint('narrow', 'Ada')}`);
    await h.join(ada.page, 'narrow', '');
    // Bob and Cy only subscribe (viewer tokens), so Cy's downlink carries Ada's media alone.
    const bob = await h.openParticipant(browser, `${server.http}/?simulcast=0&token=${mint('narrow', 'Bob', '--no-publish')}`);
    await h.join(bob.page, 'narrow', '');
    const cy = await h.openParticipant(browser, `${server.http}/?simulcast=0&token=${mint('narrow', 'Cy', '--no-publish')}`);
    await h.join(cy.page, 'narrow', '');
    for (const [who, page] of [['Bob', bob.page], ['Cy', cy.page]]) {
      await page.setViewportSize(LARGE_WINDOW);
      await h.waitFor(`${who} to see Ada`, async () => (await h.remoteTiles(page)).some((t) => t.name === 'Ada'));
      await enlarge(page, 'Ada');
      await h.waitFor(`${who} to receive Ada's top layer`, async () => (await forwardedLayer(server, 'narrow', who, 'Ada')).layer === 2, { timeout: 40000 });
    }

    // 50 kB/s: kilobytes, so about 400 kbit/s reach Cy in all; the rest is dropped. One bucket
    // (no --hashlimit-mode) for every port Cy has a candidate on, so that ICE moving Cy's media
    // to another candidate pair cannot take it out of the policer.
    const ports = await h.mediaPorts(cy.page);
    lift = h.dropOnLoopback(['-m', 'multiport', '--dports', ports.join(','), '-m', 'hashlimit',
      '--hashlimit-name', `cy${ports[0]}`, '--hashlimit-above', '50kb/s', '--hashlimit-burst', '50kb']);
    const policedAt = Date.now();
    await h.waitFor('Cy to be moved to a lower layer', async () => {
      const f = await forwardedLayer(server, 'narrow', 'Cy', 'Ada');
      return f.layer !== undefined && f.layer < 2 && f;
    }, { timeout: 10000 });
    const settled = await h.waitFor('Cy to decode the lower layer', async () => {
      const v = await h.inboundVideoOf(cy.page, 'Ada');
      return v && v.width < 1280 && v.fps >= 15 && v;
    }, { timeout: 10000 - (Date.now() - policedAt) });
    console.log(`policed: Cy settled on ${settled.width} px after ${((Date.now() - policedAt) / 1000).toFixed(1)} s`);
    await h.sleep(10000);
    const later = await h.inboundVideoOf(cy.page, 'Ada');
    const fps = (later.frames - settled.frames) / 10;
    const policed = await forwardedLayer(server, 'narrow', 'Cy', 'Ada');
    console.log(`policed: ${fps} frames/s over 10 s, ${later.freezes - settled.freezes} freezes, layer ${policed.layer}, downlink estimate ${policed.downlinkBps} bit/s`);
    assert.ok(fps >= 15, `Cy decodes ≥ 15 frames/s under the limit: ${fps}`);
    assert.ok(later.freezes - settled.freezes <= 2, `at most 2 freezes in 10 s: ${JSON.stringify([settled, later])}`);
    assert.equal((await forwardedLayer(server, 'narrow', 'Bob', 'Ada')).layer, 2, 'Bob, not policed, keeps the top layer');
    await h.screenshot(cy.page, 'simulcast-policed-subscriber');

    lift();
    lift = null;
    const liftedAt = Date.now();
    await h.waitFor('Cy to climb back to full resolution', async () => (await h.inboundVideoOf(cy.page, 'Ada'))?.width === 1280, { timeout: 20000 });
    console.log(`lifted: Cy back at 1280 px after ${((Date.now() - liftedAt) / 1000).toFixed(1)} s`);
    for (const { context } of [ada, bob, cy]) await context.close();
  } finally {
    lift?.();
    assert.equal(await server.stop(), 0);
  }
});

test('a tile out of sight receives no video, and shown again it decodes within a second', async () => {
  const server = await h.startServer();
  try {
    const ada = await h.openParticipant(browser, server.http);
    await h.join(ada.page, 'sight', 'Ada');
    const bob = await h.openParticipant(browser, `${server.http}/?simulcast=0`);
    await h.join(bob.page, 'sight', 'Bob');
    await h.waitFor('Bob to decode Ada', async () => (await h.inboundVideoOf(bob.page, 'Ada'))?.frames > 20);

    const setShown = (shown) => bob.page.evaluate((on) => {
      const tile = [...document.querySelectorAll('.tile.remote')].find((t) => t.querySelector('.name').textContent === 'Ada');
      tile.style.display = on ? '' : 'none';
    }, shown);
    await setShown(false);
    await h.waitFor('the server to pause Ada for Bob', async () => (await forwardedLayer(server, 'sight', 'Bob', 'Ada')).layer === undefined);
    await h.sleep(500);
    const hiddenFrom = await h.inboundVideoOf(bob.page, 'Ada');
    await h.sleep(2000);
    const hiddenTo = await h.inboundVideoOf(bob.page, 'Ada');
    assert.ok(hiddenTo.bytes - hiddenFrom.bytes < 2000, `no video bytes for a hidden tile: ${hiddenTo.bytes - hiddenFrom.bytes} in 2 s`);

    const shownAt = Date.now();
    await setShown(true);
    await h.waitFor('Ada decoding again', async () => (await h.inboundVideoOf(bob.page, 'Ada')).frames > hiddenTo.frames, { timeout: 5000, interval: 50 });
    const seconds = (Date.now() - shownAt) / 1000;
    console.log(`shown again: first frame after ${seconds.toFixed(2)} s`);
    assert.ok(seconds <= 1, `decodes within 1 s of being shown: ${seconds} s`);
    for (const { context } of [ada, bob]) await context.close();
  } finally {
    assert.equal(await server.stop(), 0);
  }
});
