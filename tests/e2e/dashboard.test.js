// End-to-end: the operators' dashboard watches a live room and kicks a participant.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

async function dashboardRows(page) {
  return page.$$eval('tr.participant', (rows) => rows.map((r) => ({
    id: r.dataset.participant,
    name: r.querySelector('strong').textContent,
    inBps: [...r.querySelectorAll('.bitrate-in')].map((b) => Number(b.dataset.bps)),
    outBps: [...r.querySelectorAll('.bitrate-out')].map((b) => Number(b.dataset.bps)),
  })));
}

test('the dashboard shows a live room with bitrates, and kicking removes a participant everywhere', async () => {
  const server = await h.startServer();
  try {
    const ada = await h.openParticipant(browser, server.http);
    const bob = await h.openParticipant(browser, server.http);
    await h.join(ada.page, 'ops', 'Ada');
    await h.join(bob.page, 'ops', 'Bob');

    const admin = await h.openParticipant(browser, `${server.http}/admin`);
    const rows = await h.waitFor('both participants with non-zero bitrates in and out', async () => {
      const r = await dashboardRows(admin.page);
      const live = r.length === 2 && r.every((p) => p.inBps.length === 2 && p.outBps.length === 2
        && [...p.inBps, ...p.outBps].every((bps) => bps > 0));
      return live && r;
    });
    assert.deepEqual(rows.map((r) => r.name).sort(), ['Ada', 'Bob']);
    await h.sleep(3000); // a few seconds of history in the plots
    await h.screenshot(admin.page, 'dashboard');
    assert.deepEqual(h.cspViolations, [], 'the dashboard needs nothing its security policy blocks');

    const bobId = rows.find((r) => r.name === 'Bob').id;
    admin.page.once('dialog', (dialog) => dialog.accept());
    await admin.page.click(`tr[data-participant="${bobId}"] button.danger`);

    await h.waitFor('Bob gone from the dashboard', async () => {
      const r = await dashboardRows(admin.page);
      return r.length === 1 && r[0].name === 'Ada';
    });
    await h.waitFor("Bob gone from Ada's page", async () => (await h.remoteTiles(ada.page)).length === 0);
    await h.waitFor('Bob told why', () => bob.page.$eval('#notice', (n) => !n.hidden && n.textContent));
    assert.match(await bob.page.textContent('#notice'), /operator removed you/);
    for (const p of [ada, bob, admin]) await p.context.close();
  } finally {
    await server.stop();
  }
});
