// End-to-end: simulcast. A Chromium publisher sends three VP8 layers (q/h/f at 1/4, 1/2 and full
// resolution); the server keeps them together as one track and forwards each subscriber one
// layer, switching on keyframes without the subscriber's decoder noticing.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

/** What the publisher's page sends, per simulcast layer. */
async function outboundLayers(page) {
  return page.evaluate(async () => {
    const out = {};
    (await window.roomcast.pc.getStats()).forEach((r) => {
      if (r.type === 'outbound-rtp' && r.kind === 'video') out[r.rid || ''] = { width: r.frameWidth || 0, bytes: r.bytesSent || 0 };
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

test('a three-layer publisher is one track on the server, and a subscriber with room to spare gets full resolution', async () => {
  const server = await h.startServer();
  try {
    const ada = await h.openParticipant(browser, server.http);
    await h.join(ada.page, 'layers', 'Ada');
    const bob = await h.openParticipant(browser, server.http);
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

    const full = await h.waitFor('Bob to decode Ada at 1280 wide', async () => {
      const v = await inboundVideo(bob.page);
      return v?.width === 1280 && v;
    }, { timeout: 30000 });
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
