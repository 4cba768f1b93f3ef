// End-to-end: reconnect. A page whose WebSocket closes without anyone ending the session joins
// again by itself, says so while it does, and sees and is seen again; leaving on purpose does not
// come back.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

const seesVideoOf = async (page, name) => (await h.remoteTiles(page)).some((t) => t.name === name && t.videoWidth > 0);

test('a page whose WebSocket is cut rejoins and sees media again within 10 s', async () => {
  const server = await h.startServer();
  try {
    const ada = await h.openParticipant(browser, `${server.http}/?simulcast=0`);
    await h.join(ada.page, 'again', 'Ada');
    const bob = await h.openParticipant(browser, `${server.http}/?simulcast=0`);
    await h.join(bob.page, 'again', 'Bob');
    await h.waitFor('Bob to see Ada', () => seesVideoOf(bob.page, 'Ada'));
    await bob.page.click('#mute-audio');

    const cutAt = Date.now();
    await bob.page.evaluate(() => window.roomcast.ws.close());
    await h.waitFor('Bob\'s page to say it reconnects', async () => (await bob.page.textContent('#status')) === 'Reconnecting…');
    assert.match(await bob.page.textContent('#notice'), /Reconnecting/);
    await h.waitFor('Bob to see Ada again', () => seesVideoOf(bob.page, 'Ada'), { timeout: 10000 });
    const seconds = (Date.now() - cutAt) / 1000;
    console.log(`reconnect: Bob sees Ada again ${seconds.toFixed(1)} s after the cut`);
    assert.ok(seconds <= 10, `${seconds} s`);
    await h.waitFor('Ada to see Bob again', () => seesVideoOf(ada.page, 'Bob'), { timeout: 10000 });
    assert.equal(await bob.page.isHidden('#notice'), true, 'the notice goes once back');
    // Still muted after the rejoin, on the server too: Ada's page shows it.
    await h.waitFor('Ada to see Bob muted', async () => (await h.tileClasses(ada.page, 'Bob'))?.includes('audio-muted'));
    assert.equal((await h.remoteTiles(ada.page)).filter((t) => t.name === 'Bob').length, 1, 'one Bob, not a ghost beside him');

    await bob.page.click('#leave');
    await h.sleep(2500);
    assert.equal(await bob.page.textContent('#status'), 'Left the room');
    await h.waitFor('Bob gone from Ada\'s page', async () => !(await h.remoteTiles(ada.page)).some((t) => t.name === 'Bob'));
    for (const { context } of [ada, bob]) await context.close();
  } finally {
    assert.equal(await server.stop(), 0);
  }
});
