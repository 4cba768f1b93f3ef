// End-to-end: coturn as the fallback relay, with per-participant credentials minted by roomcast.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

const SECRET = 'e2e-shared-secret';
let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

/** Candidate types of the nominated (selected) pair, from the client's own getStats. */
async function selectedPair(page) {
  return page.evaluate(async () => {
    const pc = window.roomcast.pc;
    if (!pc) return null;
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((r) => { if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
    if (!pair) return null;
    return { local: stats.get(pair.localCandidateId).candidateType, remote: stats.get(pair.remoteCandidateId).candidateType };
  });
}

async function decodes(page) {
  const frames = () => h.inboundStats(page).then((s) => Object.values(s).filter((t) => t.kind === 'video').reduce((n, t) => n + t.framesDecoded, 0));
  const before = await frames();
  await h.sleep(1000);
  return (await frames()) > before;
}

test('relay-only participants reach each other through coturn with minted credentials', async () => {
  const turn = await h.startTurn(SECRET);
  let server;
  try {
    // Inside the try: coturn is stopped even when roomcast cannot start.
    server = await h.startServer(['--turn', turn.url, '--turn-secret', SECRET]);
    const people = [];
    for (const name of ['Ada', 'Bob']) {
      const p = await h.openParticipant(browser, `${server.http}/?relay=1`);
      await h.join(p.page, 'relayed', name);
      people.push(p);
    }
    for (const { page } of people) {
      await h.waitFor('a remote video playing', async () => (await h.remoteTiles(page)).some((t) => t.videoWidth > 0));
      await h.waitFor('frames decoding', () => decodes(page));
      const pair = await h.waitFor('a selected candidate pair', () => selectedPair(page));
      assert.equal(pair.local, 'relay', 'media goes through the TURN relay');
      const shown = await h.waitFor('the debug panel to show the pair', () => page.$eval('#selected-pair', (e) => /^relay/.test(e.textContent) && e.textContent));
      assert.match(shown, /^relay \(udp/);
    }
    const credentials = await people[0].page.evaluate(() => window.roomcast.pc.getConfiguration().iceServers);
    assert.match(credentials[0].username, /^\d+:p[0-9a-f]{16}$/, 'username is <expiry>:<participant>');
    assert.notEqual(credentials[0].credential, SECRET, 'the shared secret never reaches the page');
    await people[0].page.click('summary');
    await h.screenshot(people[0].page, 'relay-room');
    for (const { context } of people) await context.close();
  } finally {
    await server?.stop();
    await turn.stop();
  }
});

test('with a wrong TURN secret the relay never appears and the page says so', async () => {
  const turn = await h.startTurn(SECRET);
  let server;
  try {
    // Inside the try: coturn is stopped even when roomcast cannot start.
    server = await h.startServer(['--turn', turn.url, '--turn-secret', 'not-the-secret']);
    const ada = await h.openParticipant(browser, `${server.http}/?relay=1`);
    await h.join(ada.page, 'broken-relay', 'Ada');
    const message = await h.waitFor('the relay-unreachable notice', () => ada.page.$eval('#notice', (n) => !n.hidden && n.textContent));
    assert.match(message, /TURN relay could not be reached/);
    assert.equal(await ada.page.evaluate(() => window.roomcast.relayCandidates), 0);
    await h.screenshot(ada.page, 'relay-unreachable');
    await ada.context.close();
  } finally {
    await server?.stop();
    await turn.stop();
  }
});
