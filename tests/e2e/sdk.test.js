// End-to-end: the client library on its own. The smallest embedding page (client/sdk-example.*,
// the example of docs/client-sdk.md) joins a room with the meeting page, shows its video and
// gets its chat, and the meeting page sees the embedded participant's video.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

test('a page embedding roomcast.js joins, shows the others\' video and receives data', async () => {
  const server = await h.startServer();
  try {
    const ada = await h.openParticipant(browser, `${server.http}/?simulcast=0`);
    await h.join(ada.page, 'embed', 'Ada');
    const ed = await h.openParticipant(browser, `${server.http}/sdk-example.html?room=embed&name=Ed`);
    await h.waitFor('the embedded page to show Ada\'s video', () => ed.page.evaluate(() => {
      const video = document.querySelector('#videos video');
      return !!video && video.videoWidth > 0;
    }));
    await h.waitFor('Ada to see Ed\'s video', async () => (await h.remoteTiles(ada.page)).some((t) => t.name === 'Ed' && t.videoWidth > 0));
    await h.waitFor('Ada\'s data channel to open', () => ada.page.evaluate(() => window.roomcast.data?.readyState === 'open'));
    await ada.page.click('#chat-toggle');
    await ada.page.fill('#chat-text', 'welcome, Ed');
    await ada.page.press('#chat-text', 'Enter');
    await h.waitFor('Ed to get the message', async () => (await ed.page.$$('#messages li')).length === 1);
    assert.equal(await ed.page.textContent('#messages li'), 'Ada: {"kind":"chat","text":"welcome, Ed"}');
    assert.deepEqual(h.cspViolations, [], 'the module loads under the page\'s Content-Security-Policy');
  } finally {
    await server.stop();
  }
});
