// End-to-end: screen share. A participant publishes a second video track as a screen share (here
// a canvas capture, which is what getDisplayMedia gives a page too: a video track); every other
// page shows it large, first, with a presenter label, and it goes away for everyone when stopped.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

/** Starts sharing a 1280×720 canvas with a moving square, as the page's screen share. */
async function shareCanvas(page) {
  await page.evaluate(async () => {
    const canvas = Object.assign(document.createElement('canvas'), { width: 1280, height: 720 });
    const g = canvas.getContext('2d');
    let x = 0;
    setInterval(() => {
      g.fillStyle = '#203040';
      g.fillRect(0, 0, 1280, 720);
      g.fillStyle = '#f0c040';
      g.fillRect((x += 16) % 1200, 300, 80, 80);
      g.font = '64px sans-serif';
      g.fillText('shared screen', 420, 200);
    }, 66);
    await window.roomcast.shareScreen(canvas.captureStream(15).getVideoTracks()[0]);
  });
}

/** The screen tile `page` shows for the participant named `name`: its size and its video's. */
async function screenTile(page, name) {
  return page.evaluate((who) => {
    const tile = [...document.querySelectorAll('.tile.screen')].find((t) => t.querySelector('.name').textContent === `${who} (screen)`);
    if (!tile) return null;
    const video = tile.querySelector('video');
    return { width: tile.clientWidth, first: tile === document.querySelector('#tiles').firstElementChild, videoWidth: video.videoWidth };
  }, name);
}

/** What `page` knows of the participant named `name` publishing (from participant objects). */
async function cameraTileWidth(page, name) {
  return page.evaluate((who) => {
    const tile = [...document.querySelectorAll('.tile.remote:not(.screen)')].find((t) => t.querySelector('.name').textContent === who);
    return tile?.clientWidth ?? null;
  }, name);
}

test('a shared screen appears large and first on the others\' pages, and goes away when stopped', async () => {
  const server = await h.startServer();
  try {
    const people = {};
    for (const name of ['Ada', 'Bob', 'Cy']) {
      people[name] = await h.openParticipant(browser, `${server.http}/?simulcast=0`);
      await h.join(people[name].page, 'screen', name);
    }
    for (const name of ['Bob', 'Cy']) {
      await h.waitFor(`${name} to see Ada's camera`, async () => (await h.remoteTiles(people[name].page)).some((t) => t.name === 'Ada' && t.videoWidth > 0));
    }

    await shareCanvas(people.Ada.page);
    assert.equal(await people.Ada.page.textContent('#share-screen'), 'Stop sharing');
    for (const name of ['Bob', 'Cy']) {
      const { page } = people[name];
      const shown = await h.waitFor(`${name} to show Ada's screen`, async () => {
        const t = await screenTile(page, 'Ada');
        return t && t.videoWidth > 0 && t;
      });
      const camera = await cameraTileWidth(page, 'Ada');
      console.log(`screen: ${name} shows Ada's screen ${shown.width} px wide (camera tile ${camera} px), video ${shown.videoWidth} px`);
      assert.ok(shown.first, 'the shared screen is the first tile');
      assert.ok(shown.width > 1.5 * camera, `the screen is shown larger than a camera: ${shown.width} vs ${camera}`);
    }
    // The server says what Ada publishes, and the screen is a track of its own on the server.
    const room = await (await fetch(`${server.http}/api/rooms/screen`)).json();
    const ada = room.participants.find((p) => p.name === 'Ada');
    assert.equal(ada.published.filter((t) => t.kind === 'video').length, 2, 'camera and screen');
    const seen = await people.Bob.page.evaluate(() => [...window.roomcast.forwarded.values()].map((t) => t.source).sort());
    assert.ok(seen.includes('screen') && seen.includes('camera') && seen.includes('microphone'), JSON.stringify(seen));
    await h.screenshot(people.Bob.page, 'screen-share');

    await people.Ada.page.evaluate(() => window.roomcast.stopScreen());
    for (const name of ['Bob', 'Cy']) {
      await h.waitFor(`${name}'s page to drop Ada's screen`, async () => (await screenTile(people[name].page, 'Ada')) === null);
      assert.ok((await h.remoteTiles(people[name].page)).some((t) => t.name === 'Ada' && t.videoWidth > 0), 'Ada\'s camera stays');
    }
    await h.waitFor('the server to unpublish the screen', async () => {
      const r = await (await fetch(`${server.http}/api/rooms/screen`)).json();
      return r.participants.find((p) => p.name === 'Ada').published.filter((t) => t.kind === 'video').length === 1;
    });
    for (const { context } of Object.values(people)) await context.close();
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('the participant object says who shares a screen', async () => {
  const server = await h.startServer();
  try {
    const ada = await h.openParticipant(browser, `${server.http}/?simulcast=0`);
    await h.join(ada.page, 'screen-info', 'Ada');
    const bob = await h.openParticipant(browser, `${server.http}/?simulcast=0`);
    await h.join(bob.page, 'screen-info', 'Bob');
    await h.waitFor('Bob to see Ada', async () => (await h.remoteTiles(bob.page)).some((t) => t.name === 'Ada' && t.videoWidth > 0));
    // Bob's page records every participant_updated it gets.
    await bob.page.evaluate(() => {
      window.updates = [];
      const ws = window.roomcast.ws;
      ws.addEventListener('message', (e) => { const m = JSON.parse(e.data); if (m.type === 'participant_updated') window.updates.push(m.participant); });
    });
    await shareCanvas(ada.page);
    const update = await h.waitFor('an update saying Ada shares her screen', async () => bob.page.evaluate(
      () => window.updates.find((p) => p.name === 'Ada' && p.publishes.includes('screen'))));
    assert.deepEqual(update.publishes, ['microphone', 'camera', 'screen']);
    await ada.page.evaluate(() => window.roomcast.stopScreen());
    await h.waitFor('an update saying Ada stopped', async () => bob.page.evaluate(
      () => window.updates.some((p, i) => i > 0 && p.name === 'Ada' && !p.publishes.includes('screen'))));
    for (const { context } of [ada, bob]) await context.close();
  } finally {
    assert.equal(await server.stop(), 0);
  }
});
