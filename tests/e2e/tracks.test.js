// End-to-end: a track's life. A participant who stops publishing their camera is shown without
// video by everyone and never sent to those who join later; the m-section that carried it is
// reused for the next participant's video, which the browser decodes.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

/** Kinds of what the server lists for participant `name`: published, or forwarded from `from`. */
async function listed(server, room, name, from) {
  const r = await (await fetch(`${server.http}/api/rooms/${room}`)).json();
  const p = r.participants.find((x) => x.name === name);
  const source = from && r.participants.find((x) => x.name === from);
  const tracks = from ? p?.forwarded.filter((t) => t.publisher === source?.id) : p?.published;
  return (tracks || []).map((t) => t.kind).sort().join(',');
}

/** How many media sections the server's description of `page`'s connection has. */
async function sections(page) {
  return page.evaluate(() => window.roomcast.pc.remoteDescription.sdp.split('\nm=').length - 1);
}

test('a stopped camera is unpublished for everyone, and its m-section carries the next newcomer\'s video', async () => {
  const server = await h.startServer();
  try {
    const ada = await h.openParticipant(browser, server.http);
    await h.join(ada.page, 'tracks', 'Ada');
    const bob = await h.openParticipant(browser, server.http);
    await h.join(bob.page, 'tracks', 'Bob');
    await h.waitFor('Bob to decode Ada', async () => (await h.inboundVideoOf(bob.page, 'Ada'))?.frames > 10);

    await ada.page.evaluate(() => window.roomcast.unpublish('video'));
    await h.waitFor('the server to list only Ada\'s audio', async () => (await listed(server, 'tracks', 'Ada')) === 'audio');
    await h.waitFor('Bob to be forwarded only Ada\'s audio', async () => (await listed(server, 'tracks', 'Bob', 'Ada')) === 'audio');
    await h.waitFor('Bob\'s tile of Ada to say it has no video', async () => (await h.tileClasses(bob.page, 'Ada'))?.includes('no-video'));
    await h.screenshot(bob.page, 'tracks-camera-stopped');

    // Cy's video rides on the m-section that carried Ada's; only Cy's audio needs a new one.
    const withoutCy = await sections(bob.page);
    const cy = await h.openParticipant(browser, server.http);
    await h.join(cy.page, 'tracks', 'Cy');
    await h.waitFor('Cy to be forwarded Ada\'s audio', async () => (await listed(server, 'tracks', 'Cy', 'Ada')) === 'audio');
    await h.waitFor('Bob to decode Cy', async () => (await h.inboundVideoOf(bob.page, 'Cy'))?.frames > 10);
    // Cy's video may play before the offer that adds Cy's audio section is through.
    await h.waitFor('Bob\'s description to take Cy\'s audio', async () => (await sections(bob.page)) >= withoutCy + 1);
    await h.sleep(1000);
    assert.equal(await sections(bob.page), withoutCy + 1, 'one new section, not two');
    assert.equal(await listed(server, 'tracks', 'Cy', 'Ada'), 'audio', 'Cy, who came later, never gets Ada\'s video');

    // Ada goes; her audio's m-section at Bob waits, inactive, for the next audio.
    await ada.context.close();
    await h.waitFor('Bob to see Ada leave', async () => !(await h.remoteTiles(bob.page)).some((t) => t.name === 'Ada'));
    await h.sleep(1000); // the renegotiation that makes Ada's m-sections inactive
    const before = await sections(bob.page);
    const dan = await h.openParticipant(browser, server.http);
    await h.join(dan.page, 'tracks', 'Dan');
    const decoded = await h.waitFor('Bob to decode Dan', async () => {
      const v = await h.inboundVideoOf(bob.page, 'Dan');
      return v?.frames > 30 && v;
    });
    assert.equal(await sections(bob.page), before + 1, 'Dan\'s audio rides on the m-section Ada\'s left');
    assert.ok(decoded.width > 0);
    const danTile = await h.tileClasses(bob.page, 'Dan');
    assert.ok(!danTile.includes('waiting') && !danTile.includes('no-video'), `Dan's tile shows video: ${danTile}`);
    await h.waitFor('Bob to hear Dan', async () => (await h.remoteTiles(bob.page)).find((t) => t.name === 'Dan')?.audioTracks === 1);
    await h.screenshot(bob.page, 'tracks-reused-m-section');
  } finally {
    await server.stop();
  }
});
