// End-to-end: device pickers. With several cameras, the page lists them; picking the other one swaps
// the track in place (replaceTrack): no new offer, and the others keep receiving video.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let browser;
// Chromium's fake cameras: fake_device_0 (I420), fake_device_1 (Y16, a depth format its encoder
// does not take: switching to it stops the video, as a real depth camera would) and
// fake_device_2 (MJPEG). The test switches from the first to the third.
before(async () => { browser = await h.launchBrowser({ fakeDevices: 'device-count=3' }); });
after(async () => { await browser?.close(); });

test('picking another camera swaps it without renegotiating, and the others keep seeing video', async () => {
  const server = await h.startServer();
  try {
    const ada = await h.openParticipant(browser, `${server.http}/?simulcast=0`);
    // Count the offers Ada's page sends from here on.
    await ada.page.addInitScript(() => {
      const send = WebSocket.prototype.send;
      window.offersSent = 0;
      WebSocket.prototype.send = function (data) {
        if (JSON.parse(data).type === 'offer') window.offersSent += 1;
        return send.call(this, data);
      };
    });
    await ada.page.reload();
    await h.join(ada.page, 'devices', 'Ada');
    const bob = await h.openParticipant(browser, `${server.http}/?simulcast=0`);
    await h.join(bob.page, 'devices', 'Bob');
    await h.waitFor('Bob to see Ada', async () => (await h.inboundVideoOf(bob.page, 'Ada'))?.frames > 10);

    const cameras = await h.waitFor('Ada\'s camera picker to list the cameras', async () => {
      const options = await ada.page.$$eval('#camera-select option', (os) => os.map((o) => ({ id: o.value, label: o.textContent, selected: o.selected })));
      return options.length === 3 && !(await ada.page.isHidden('#camera-select')) && options;
    });
    assert.equal(cameras.find((c) => c.selected).label, 'fake_device_0', 'the camera in use is selected');
    const other = cameras.find((c) => c.label === 'fake_device_2');
    const offers = await ada.page.evaluate(() => window.offersSent);
    const sentLabel = () => ada.page.evaluate(() => window.roomcast.pc.getSenders().find((s) => s.track?.kind === 'video').track.label);
    const before = await sentLabel();
    await ada.page.selectOption('#camera-select', other.id);
    await h.waitFor('Ada to send the other camera', async () => (await sentLabel()) === other.label);
    console.log(`devices: ${before} -> ${other.label}`);
    const frames = (await h.inboundVideoOf(bob.page, 'Ada')).frames;
    await h.waitFor('Bob to keep decoding Ada', async () => (await h.inboundVideoOf(bob.page, 'Ada')).frames > frames + 30);
    assert.equal(await ada.page.evaluate(() => window.offersSent), offers, 'no renegotiation');
    assert.equal(await ada.page.$eval('#camera-select', (s) => s.selectedOptions[0].value), other.id);
    await h.screenshot(ada.page, 'device-picker');
    for (const { context } of [ada, bob]) await context.close();
  } finally {
    assert.equal(await server.stop(), 0);
  }
});
