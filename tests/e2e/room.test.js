// End-to-end: real Chromium participants in real rooms through the client page.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

/** Every remote tile shows decoded video with frames still being decoded, and carries audio. */
async function seesAndHears(page, expected) {
  await h.waitFor(`${expected} playing remote videos`, async () => {
    const tiles = await h.remoteTiles(page);
    return tiles.length === expected && tiles.every((t) => t.videoWidth > 0 && t.audioTracks === 1) && tiles;
  });
  const before = await h.inboundStats(page);
  // Each try takes fresh stats: a snapshot taken once could never come right on a retry.
  const live = async (kind, field) => Object.entries(await h.inboundStats(page))
    .filter(([id, s]) => s.kind === kind && before[id] && s[field] > before[id][field]).length;
  await h.sleep(1500);
  await h.waitFor(`video decoding from ${expected} participants`, async () => (await live('video', 'framesDecoded')) >= expected);
  await h.waitFor(`audio flowing from ${expected} participants`, async () => (await live('audio', 'bytes')) >= expected);
}

test('three people in one room each see and hear the other two; leavers vanish; a late joiner sees everyone', async () => {
  const server = await h.startServer();
  try {
    const people = [];
    for (const name of ['Ada', 'Bob', 'Cy']) {
      const p = await h.openParticipant(browser, server.http);
      await h.join(p.page, 'standup', name);
      people.push(p);
    }
    for (const { page } of people) await seesAndHears(page, 2);
    const names = (await h.remoteTiles(people[0].page)).map((t) => t.name).sort();
    assert.deepEqual(names, ['Bob', 'Cy']);
    await h.screenshot(people[0].page, 'three-person-room');
    assert.deepEqual(h.cspViolations, [], 'the page needs nothing its security policy blocks');

    await people[2].page.click('#leave');
    await people[2].context.close();
    for (const { page } of people.slice(0, 2)) {
      await h.waitFor('the leaver to vanish', async () => (await h.remoteTiles(page)).length === 1);
    }

    const dee = await h.openParticipant(browser, server.http);
    await h.join(dee.page, 'standup', 'Dee');
    people[2] = dee;
    for (const { page } of people) await seesAndHears(page, 2);
    const deeSees = (await h.remoteTiles(dee.page)).map((t) => t.name).sort();
    assert.deepEqual(deeSees, ['Ada', 'Bob']);
    for (const { context } of people) await context.close();
  } finally {
    assert.equal(await server.stop(), 0, 'server exits cleanly on SIGTERM');
  }
});

test('with capacity 2 a third joiner is told the room is full', async () => {
  const server = await h.startServer(['--room-capacity', '2']);
  try {
    const people = [];
    for (const name of ['Ada', 'Bob', 'Cy']) {
      const p = await h.openParticipant(browser, server.http);
      await h.join(p.page, 'tiny', name);
      people.push(p);
      if (people.length < 3) await h.waitFor(`${name} admitted`, () => p.page.$eval('#status', (s) => s.dataset.state === 'connected'));
    }
    const third = people[2].page;
    await h.waitFor('the room-full notice', () => third.$eval('#notice', (n) => !n.hidden && n.textContent));
    assert.match(await third.textContent('#notice'), /full \(2 participants\)/);
    await h.screenshot(third, 'room-full');
    assert.equal((await h.remoteTiles(people[0].page)).length, 1, 'the first two still see only each other');
    for (const { context } of people) await context.close();
  } finally {
    await server.stop();
  }
});

test('the client is served over HTTPS with a self-signed certificate generated on first run', async () => {
  const server = await h.startServer();
  try {
    const ada = await h.openParticipant(browser, server.https, { ignoreHTTPSErrors: true });
    const bob = await h.openParticipant(browser, server.https, { ignoreHTTPSErrors: true });
    await h.join(ada.page, 'secure', 'Ada');
    await h.join(bob.page, 'secure', 'Bob');
    await seesAndHears(ada.page, 1);
    await seesAndHears(bob.page, 1);
    await ada.context.close();
    await bob.context.close();
    // HSTS on HTTPS answers only (browsers ignore it behind a certificate they were told to accept).
    const headers = (url, options = {}) => new Promise((resolve, reject) => {
      require(url.startsWith('https') ? 'node:https' : 'node:http')
        .get(url, options, (r) => { r.resume(); resolve(r.headers); }).on('error', reject);
    });
    const secure = await headers(server.https, { rejectUnauthorized: false });
    assert.equal(secure['strict-transport-security'], 'max-age=31536000');
    assert.equal((await headers(server.http))['strict-transport-security'], undefined);
  } finally {
    await server.stop();
  }
});
