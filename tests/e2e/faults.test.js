// End-to-end: network faults between real Chromium participants and the SFU, made with iptables
// on loopback (this kernel has no netem). A participant whose network is cut is reported gone
// within the default peer timeout; 5 % loss on a publisher's uplink is repaired by NACKs and
// the publisher's retransmissions, on a subscriber's downlink by the SFU's retransmissions on
// RTX, and subscribers keep decoding.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

async function videoFrames(page) {
  const stats = await h.inboundStats(page);
  return Object.values(stats).filter((s) => s.kind === 'video').reduce((n, s) => n + s.framesDecoded, 0);
}

/** What the publisher's video sender was asked to resend, and resent. */
async function senderRepairs(page) {
  return page.evaluate(async () => {
    let nacks = 0; let resent = 0;
    (await window.roomcast.pc.getStats()).forEach((r) => {
      if (r.type === 'outbound-rtp' && r.kind === 'video') { nacks += r.nackCount || 0; resent += r.retransmittedPacketsSent || 0; }
    });
    return { nacks, resent };
  });
}

/** Drops every packet to and from a local UDP port; returns what lifts that again. */
function cutPort(port) {
  const undoIn = h.dropOnLoopback(['--dport', String(port)]);
  const undoOut = h.dropOnLoopback(['--sport', String(port)]);
  return () => { undoIn(); undoOut(); };
}

async function twoInARoom(server, room) {
  const ada = await h.openParticipant(browser, server.http);
  await h.join(ada.page, room, 'Ada');
  const bob = await h.openParticipant(browser, server.http);
  await h.join(bob.page, room, 'Bob');
  for (const { page } of [ada, bob]) {
    await h.waitFor('a remote video playing', async () => (await h.remoteTiles(page)).some((t) => t.videoWidth > 0));
  }
  return { ada, bob };
}

test('a participant whose network is cut is reported gone within the default timeout, and comes back on a new connection', async () => {
  const server = await h.startServer();
  let restore = () => {};
  try {
    const { ada, bob } = await twoInARoom(server, 'cut');
    // A client that does not restart ICE (the page would, on fresh ports, and stay: next test).
    await bob.page.evaluate(() => { window.roomcast.pc.restartIce = () => {}; });
    const port = await h.mediaPort(bob.page);
    restore = cutPort(port);
    const cutAt = Date.now();
    // Bob's signaling stays up: only his media vanished, as when a network path dies.
    await h.waitFor('Ada to see Bob leave', async () => (await h.remoteTiles(ada.page)).length === 0, { timeout: 20000 });
    const seconds = (Date.now() - cutAt) / 1000;
    console.log(`media cut reported after ${seconds.toFixed(1)} s`);
    assert.ok(seconds <= 15, `reported after ${seconds} s; the default peer timeout is 10 s`);
    // Bob's page does not give up: it restarts ICE, and once the server has removed him it joins
    // again on a new connection (new ports, which the cut does not cover); Ada sees him back.
    await h.waitFor('Bob back on Ada\'s page with video', async () => (await h.remoteTiles(ada.page)).some((t) => t.name === 'Bob' && t.videoWidth > 0), { timeout: 20000 });
    console.log(`back after ${((Date.now() - cutAt) / 1000).toFixed(1)} s`);
    assert.match(await bob.page.textContent('#status'), /^In room cut$/);
    await h.screenshot(bob.page, 'media-cut-rejoined');
    for (const { context } of [ada, bob]) await context.close();
  } finally {
    restore();
    await server.stop();
  }
});

test('a participant whose network path dies restarts ICE and stays the same participant', async () => {
  const server = await h.startServer();
  let restore = () => {};
  try {
    const { ada, bob } = await twoInARoom(server, 'path');
    const bobId = await bob.page.evaluate(() => window.roomcast.selfId);
    const port = await h.mediaPort(bob.page);
    restore = cutPort(port);
    const cutAt = Date.now();
    const frames = async () => (await h.inboundVideoOf(ada.page, 'Bob'))?.frames || 0;
    await h.sleep(1000);
    const stalled = await frames();
    await h.waitFor('Bob\'s video to reach Ada again', async () => (await frames()) > stalled + 30, { timeout: 20000 });
    const seconds = (Date.now() - cutAt) / 1000;
    const newPort = await h.mediaPort(bob.page);
    console.log(`path: Bob's video back after ${seconds.toFixed(1)} s, media port ${port} -> ${newPort}`);
    assert.notEqual(newPort, port, 'ICE found a new path');
    assert.equal(await bob.page.evaluate(() => window.roomcast.selfId), bobId, 'the same participant');
    assert.equal((await h.remoteTiles(ada.page)).filter((t) => t.name === 'Bob').length, 1);
    for (const { context } of [ada, bob]) await context.close();
  } finally {
    restore();
    await server.stop();
  }
});

/** Ada and Bob in `room` on a fresh server, each sampled with `measure({ ada, bob })` at the
 * start, after a clean window and after a window in which 5 % of the packets on one path are
 * dropped: the iptables match `path({ ada, bob }, serverPort)` returns. Hands the samples to
 * `check({ ada, bob }, { start, clean, lossy })`. */
async function underFivePercentLoss(room, path, measure, check) {
  const port = await h.freeUdpPort();
  const server = await h.startServer(['--udp-port', String(port)]);
  let restore = () => {};
  try {
    const peers = await twoInARoom(server, room);
    const window = 5000;
    const start = await measure(peers);
    await h.sleep(window);
    const clean = await measure(peers);
    restore = h.dropOnLoopback([...(await path(peers, port)),
      '-m', 'statistic', '--mode', 'random', '--probability', '0.05']);
    await h.sleep(window);
    const lossy = await measure(peers);
    restore();
    restore = () => {};
    await check(peers, { start, clean, lossy });
    for (const { context } of [peers.ada, peers.bob]) await context.close();
  } finally {
    restore();
    await server.stop();
  }
}

test('with 5 % loss on the publisher\'s uplink, NACKs repair it and the subscriber keeps decoding', async () => {
  await underFivePercentLoss('lossy',
    async ({ ada }, serverPort) => ['--sport', String(await h.mediaPort(ada.page)), '--dport', String(serverPort)],
    async ({ ada, bob }) => ({ frames: await videoFrames(bob.page), ...(await senderRepairs(ada.page)) }),
    async ({ bob }, { start, clean, lossy }) => {
      const cleanFrames = clean.frames - start.frames;
      const lossyFrames = lossy.frames - clean.frames;
      const nacks = lossy.nacks - clean.nacks;
      const resent = lossy.resent - clean.resent;
      console.log(`frames decoded in 5 s: ${cleanFrames} clean, ${lossyFrames} at 5 % loss; NACKs to the publisher ${nacks}, packets resent ${resent}`);
      assert.ok(cleanFrames > 20, `unimpaired video decodes (${cleanFrames} frames)`);
      assert.ok(lossyFrames >= cleanFrames * 0.5, `video keeps decoding under loss: ${lossyFrames} vs ${cleanFrames} frames`);
      assert.ok(nacks > 0, 'the SFU asked the publisher to resend lost packets');
      assert.ok(resent > 0, 'and the publisher resent them');
      await h.screenshot(bob.page, 'lossy-uplink');
    });
});

/** What the subscriber's video receivers asked again (NACKs) and got again on RTX. */
async function receiverRepairs(page) {
  return page.evaluate(async () => {
    let nacks = 0; let repaired = 0; let frames = 0; let rtx = 0;
    (await window.roomcast.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') {
        nacks += r.nackCount || 0;
        repaired += r.retransmittedPacketsReceived || 0;
        frames += r.framesDecoded || 0;
        if (r.rtxSsrc) rtx += 1;
      }
    });
    return { nacks, repaired, frames, rtx };
  });
}

/** The server's latest description as `page` holds it, by m-section: the server's direction
 * and whether RTX is offered there. */
async function serverSections(page) {
  const sdp = await page.evaluate(() => window.roomcast.pc.currentRemoteDescription.sdp);
  return sdp.split('\r\nm=').slice(1).filter((m) => m.startsWith('video')).map((m) => ({
    direction: (m.match(/a=(sendonly|recvonly|sendrecv|inactive)/) || [])[1],
    rtx: /a=rtpmap:\d+ rtx\/90000/.test(m),
    fid: m.includes('a=ssrc-group:FID'),
  }));
}

test('with 5 % loss on a subscriber\'s downlink, the SFU resends on an RTX stream and the subscriber keeps decoding', async () => {
  await underFivePercentLoss('lossy-down',
    async ({ bob }, serverPort) => ['--sport', String(serverPort), '--dport', String(await h.mediaPort(bob.page))],
    ({ bob }) => receiverRepairs(bob.page),
    async ({ ada, bob }, { start, clean, lossy }) => {
      // RTX where the server sends; none where it receives (webrtc-rs drops incoming RTX, so a
      // publisher must resend on its media stream).
      const sections = await serverSections(ada.page);
      const sending = sections.filter((s) => s.direction === 'sendonly');
      const receiving = sections.filter((s) => s.direction === 'recvonly');
      assert.ok(sending.length > 0 && receiving.length > 0, JSON.stringify(sections));
      assert.ok(sending.every((s) => s.rtx && s.fid), `forwarded video offers RTX: ${JSON.stringify(sections)}`);
      assert.ok(receiving.every((s) => !s.rtx), `published video is answered without RTX: ${JSON.stringify(sections)}`);

      const cleanFrames = clean.frames - start.frames;
      const lossyFrames = lossy.frames - clean.frames;
      const nacks = lossy.nacks - clean.nacks;
      const repaired = lossy.repaired - clean.repaired;
      console.log(`frames decoded in 5 s: ${cleanFrames} clean, ${lossyFrames} at 5 % loss; NACKs from the subscriber ${nacks}, packets received on RTX ${repaired}`);
      assert.ok(lossy.rtx > 0, 'the subscriber knows the RTX stream of its video');
      assert.ok(nacks > 0, 'the subscriber asked for lost packets');
      assert.ok(repaired > 0, 'and got them again on the RTX stream');
      assert.ok(lossyFrames >= cleanFrames * 0.5, `video keeps decoding under loss: ${lossyFrames} vs ${cleanFrames} frames`);
      await h.screenshot(bob.page, 'lossy-downlink');
    });
});
