// End-to-end: glare. The client and the server offer at the same moment; both changes must land.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

// Runs in the page before the app: holds back the next server offer until the client has made an
// offer of its own (it adds a second video track from a canvas), so the two offers cross.
function forceGlareOnNextServerOffer() {
  const Native = window.WebSocket;
  window.glare = { armed: false, collided: false };
  window.WebSocket = class extends Native {
    set onmessage(handler) {
      super.onmessage = async (event) => {
        const message = JSON.parse(event.data);
        if (message.type === 'offer' && window.glare.armed) {
          window.glare.armed = false;
          const pc = window.roomcast.pc;
          const canvas = Object.assign(document.createElement('canvas'), { width: 320, height: 240 });
          const ctx = canvas.getContext('2d');
          setInterval(() => { ctx.fillStyle = `hsl(${Date.now() / 10 % 360} 80% 50%)`; ctx.fillRect(0, 0, 320, 240); }, 50);
          pc.addTrack(canvas.captureStream(20).getVideoTracks()[0], window.roomcast.localStream);
          while (pc.signalingState !== 'have-local-offer') await new Promise((r) => setTimeout(r, 5));
          window.glare.collided = true;
        }
        handler(event);
      };
    }
  };
}

async function liveVideoTracks(page) {
  const before = await h.inboundStats(page);
  await h.sleep(1000);
  const later = await h.inboundStats(page);
  return Object.entries(later).filter(([id, s]) => s.kind === 'video' && before[id] && s.framesDecoded > before[id].framesDecoded).length;
}

test('when client and server offer at once, the client rolls back and both changes land', async () => {
  const server = await h.startServer([], { logLevel: 'info,roomcast_sfu=debug,webrtc=warn' });
  try {
    const ada = await h.openParticipant(browser, server.http);
    await ada.page.addInitScript(forceGlareOnNextServerOffer);
    await ada.page.reload();
    await h.join(ada.page, 'glare', 'Ada');
    await h.waitFor('Ada connected', () => ada.page.$eval('#status', (s) => s.dataset.state === 'connected'));
    await ada.page.evaluate(() => { window.glare.armed = true; });

    const bob = await h.openParticipant(browser, server.http);
    await h.join(bob.page, 'glare', 'Bob');

    await h.waitFor('the offers to collide', () => ada.page.evaluate(() => window.glare.collided));
    await h.waitFor("Ada to decode Bob's video (the server's change)", async () => (await liveVideoTracks(ada.page)) >= 1);
    await h.waitFor("Bob to decode both of Ada's videos (the client's change)", async () => (await liveVideoTracks(bob.page)) >= 2);
    assert.equal(await ada.page.evaluate(() => window.roomcast.pc.signalingState), 'stable');
    assert.match(server.logs(), /glare: keeping the server's offer/, 'the server saw the collision');
    await ada.context.close();
    await bob.context.close();
  } finally {
    await server.stop();
  }
});
