// End-to-end: chat over the data channel. What one page writes reaches the others' chat panels
// with the sender's name and a time, as text (markup stays text), never back to the sender as
// someone else's line; a closed panel counts what arrived unseen. Through the client library:
// each message once with the sender's id, `to` only to those named, over 16 KiB refused.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

/** The chat lines `page` shows: who, time and text. */
async function chatLines(page) {
  return page.$$eval('#chat-log li', (items) => items.map((li) => ({
    who: li.querySelector('.who').textContent,
    time: li.querySelector('time').textContent,
    text: li.querySelector('.text').textContent,
    markup: li.querySelector('.text').children.length,
  })));
}

async function say(page, text) {
  await page.fill('#chat-text', text);
  await page.press('#chat-text', 'Enter');
}

test('a chat message reaches everyone else by name, as text, and an unread count waits on a closed panel', async () => {
  const server = await h.startServer();
  try {
    const people = {};
    for (const name of ['Ada', 'Bob', 'Cy']) {
      people[name] = await h.openParticipant(browser, `${server.http}/?simulcast=0`);
      await h.join(people[name].page, 'chat', name);
    }
    for (const { page } of Object.values(people)) {
      await h.waitFor('two remote tiles', async () => (await h.remoteTiles(page)).length === 2);
      await h.waitFor('the data channel to open', () => page.evaluate(() => window.roomcast.data?.readyState === 'open'));
    }
    const ada = people.Ada.page;
    await ada.click('#chat-toggle');
    assert.equal(await ada.isVisible('#chat'), true);
    await people.Bob.page.click('#chat-toggle');

    const hostile = 'hi <img src=x onerror="window.owned=1"> & <b>bold</b>';
    await say(ada, hostile);
    const mine = await chatLines(ada);
    assert.deepEqual(mine.map((l) => [l.who, l.text]), [['You', hostile]]);

    const bob = people.Bob.page;
    await h.waitFor('Bob to see Ada\'s message', async () => (await chatLines(bob)).length === 1);
    const [line] = await chatLines(bob);
    assert.equal(line.who, 'Ada');
    assert.equal(line.text, hostile, 'shown as written');
    assert.equal(line.markup, 0, 'as text: no element was made of it');
    assert.match(line.time, /^\d\d:\d\d$/);
    assert.equal(await bob.evaluate(() => window.owned), undefined);

    // Cy's panel is closed: the button counts what came.
    const cy = people.Cy.page;
    await h.waitFor('Cy\'s unread count', async () => (await cy.textContent('#chat-toggle')) === 'Chat (1)');
    await say(bob, 'hello Ada');
    await h.waitFor('Cy\'s unread count to grow', async () => (await cy.textContent('#chat-toggle')) === 'Chat (2)');
    await cy.click('#chat-toggle');
    assert.equal(await cy.textContent('#chat-toggle'), 'Chat');
    assert.deepEqual((await chatLines(cy)).map((l) => [l.who, l.text]), [['Ada', hostile], ['Bob', 'hello Ada']]);

    await h.waitFor('Ada to see Bob\'s reply', async () => (await chatLines(ada)).length === 2);
    assert.deepEqual((await chatLines(ada)).map((l) => l.who), ['You', 'Bob'], 'her own message came back to no one');
    await h.screenshot(bob, 'chat');

    // Through the client library: each page keeps what arrives on its data channel.
    for (const { page } of Object.values(people)) {
      await page.evaluate(() => { window.got = []; window.roomcast.on('data', (d) => window.got.push(d)); });
    }
    const ids = {};
    for (const [name, { page }] of Object.entries(people)) ids[name] = await page.evaluate(() => window.roomcast.selfId);
    const got = (page) => page.evaluate(() => window.got);
    await ada.evaluate((to) => window.roomcast.sendData({ secret: 1 }, [to]), ids.Bob);
    await ada.evaluate(() => window.roomcast.sendData({ all: 1 }));
    await h.waitFor('Cy to get the message to all', async () => (await got(cy)).length === 1);
    assert.deepEqual(await got(cy), [{ from: ids.Ada, payload: { all: 1 } }], '`to` reached only Bob');
    await h.waitFor('Bob to get both', async () => (await got(bob)).length === 2);
    assert.deepEqual(await got(bob), [{ from: ids.Ada, payload: { secret: 1 } }, { from: ids.Ada, payload: { all: 1 } }], 'each once, in order');
    assert.deepEqual(await got(ada), [], 'nothing back to the sender');

    // Over 16 KiB: refused, said to the sender alone, received by no one.
    await ada.evaluate(() => {
      window.errors = [];
      window.roomcast.on('server-error', (e) => window.errors.push(e.code));
      window.roomcast.sendData({ big: 'x'.repeat(17 * 1024) });
    });
    await h.waitFor('Ada to be told it was too large', () => ada.evaluate(() => window.errors.includes('too_large')));
    await ada.evaluate(() => window.roomcast.sendData({ after: 1 }));
    await h.waitFor('Bob to get the next message', async () => (await got(bob)).length === 3);
    assert.deepEqual((await got(bob))[2].payload, { after: 1 }, 'the oversized one never arrived');
  } finally {
    await server.stop();
  }
});
