// End-to-end: active speakers. The server reads each publisher's RFC 6464 audio levels and tells
// everyone who speaks; the page rings whoever does. Chromium's fake microphone beeps steadily, so
// a page plays it or, with its audio track disabled (the browser then sends silence), does not.
// Speaker view shows whoever holds the floor large.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

/** The names of the tiles `page` rings as speaking ("(you)" for its own). */
async function ringed(page) {
  return page.$$eval('.tile.speaking .name', (names) => names.map((n) => n.textContent));
}

/** The speaker list `page` last received: names, from the room's participants. */
async function speakers(page) {
  return page.evaluate(() => window.roomcast.speakers.map((s) => (s.id === window.roomcast.selfId ? 'self' : window.roomcast.participants.get(s.id)?.name)));
}

const silence = (page, silent) => page.evaluate((off) => {
  window.roomcast.localStream.getAudioTracks().forEach((t) => { t.enabled = !off; });
}, silent);

test('whoever plays audio is the speaker for everyone, and the floor passes when someone else talks', async () => {
  const server = await h.startServer();
  try {
    const ada = await h.openParticipant(browser, server.http);
    await h.join(ada.page, 'talk', 'Ada');
    await h.waitFor('Ada\'s microphone to be live', () => ada.page.evaluate(() => !!window.roomcast.localStream));
    const bob = await h.openParticipant(browser, server.http);
    await h.join(bob.page, 'talk', 'Bob');
    await h.waitFor('Bob\'s microphone to be live', () => bob.page.evaluate(() => !!window.roomcast.localStream));
    await silence(bob.page, true);

    await h.waitFor('Bob to see Ada as the one speaker', async () => JSON.stringify(await speakers(bob.page)) === '["Ada"]');
    await h.waitFor('Ada to see herself as the one speaker', async () => JSON.stringify(await speakers(ada.page)) === '["self"]');
    // The ring follows the speakers message on the page's next render: wait for it too.
    await h.waitFor('Bob\'s page to ring Ada', async () => JSON.stringify(await ringed(bob.page)) === '["Ada"]', { timeout: 3000 });
    await h.waitFor('Ada\'s page to ring herself', async () => JSON.stringify(await ringed(ada.page)) === '["Ada (you)"]', { timeout: 3000 });
    await h.screenshot(bob.page, 'speakers-ada-speaks');

    // Muted at the server while her microphone still beeps: not a speaker; unmuted, she is again.
    const serverMute = (muted) => ada.page.evaluate((m) => window.roomcast.send({ type: 'mute', kind: 'audio', muted: m }), muted);
    await serverMute(true);
    await h.waitFor('Ada, muted, to stop being a speaker', async () => (await speakers(bob.page)).length === 0, { timeout: 5000 });
    await serverMute(false);
    await h.waitFor('Ada, unmuted, to speak again', async () => JSON.stringify(await speakers(bob.page)) === '["Ada"]', { timeout: 5000 });

    // Bob talks, Ada falls silent: the floor passes to Bob within a few seconds.
    const passedAt = Date.now();
    await silence(bob.page, false);
    await silence(ada.page, true);
    await h.waitFor('Ada to see Bob as the one speaker', async () => JSON.stringify(await speakers(ada.page)) === '["Bob"]', { timeout: 5000 });
    console.log(`speakers: the floor passed after ${((Date.now() - passedAt) / 1000).toFixed(1)} s`);
    assert.deepEqual(await ringed(ada.page), ['Bob']);

    // Speaker view: whoever holds the floor, large above the others.
    await ada.page.click('#view-toggle');
    const bobIsLarge = () => ada.page.evaluate(() => {
      const tiles = [...document.querySelectorAll('.tile')];
      const bob = tiles.find((t) => t.querySelector('.name').textContent === 'Bob');
      const own = tiles.find((t) => t.classList.contains('local'));
      return !!bob?.classList.contains('floor') && bob.getBoundingClientRect().width > 2 * own.getBoundingClientRect().width;
    });
    await h.waitFor('Bob large in Ada\'s speaker view', bobIsLarge);
    await h.screenshot(ada.page, 'speaker-view');

    // Nobody plays anything: an empty list; the floor stays where it was.
    await silence(bob.page, true);
    await h.waitFor('an empty speaker list', async () => (await speakers(ada.page)).length === 0, { timeout: 5000 });
    assert.deepEqual(await ringed(ada.page), []);
    assert.equal(await bobIsLarge(), true, 'the view does not jump away in silence');
  } finally {
    await server.stop();
  }
});
