// End-to-end: three roomcast nodes sharing a real Redis (Debian's redis-server on a free loopback
// port), Chromium pages entering through different nodes. One room, seen the same from every
// node; its owner killed with SIGKILL and the others back together on a survivor; Redis stopped
// under a running room and started again.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const net = require('node:net');
const h = require('./harness');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

/** A throwaway redis-server on `port` (a free one by default), without persistence. */
async function startRedis(port) {
  port = port || await freeTcpPort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await h.waitFor('redis-server to listen', () => new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => { socket.end(); resolve(true); });
    socket.on('error', () => resolve(false));
  }), { timeout: 10000, interval: 50 });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGKILL'); }),
  };
}

async function freeTcpPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `n` roomcast nodes on `redis`, once the first lists them all; pushed onto `into` as they
 * start, so that a test's `finally` stops whichever did. */
async function startNodes(redis, n, into) {
  for (let i = 0; i < n; i++) into.push(await h.startServer(['--redis', redis.url]));
  await h.waitFor(`${n} nodes listed`, async () => (await getJson(into[0], '/api/nodes')).length === n);
}

async function getJson(node, route) {
  return (await fetch(`${node.http}${route}`)).json();
}

async function nodeId(node) {
  const url = node.http;
  return (await getJson(node, '/api/nodes')).find((n) => n.url === url)?.id;
}

const framesOf = async (page, name) => (await h.inboundVideoOf(page, name))?.frames || 0;
const selfId = (page) => page.evaluate(() => window.roomcast.selfId);

async function seesVideo(page, names) {
  for (const name of names) {
    await h.waitFor(`video from ${name}`, async () => await framesOf(page, name) > 10);
  }
}

test('pages entering through three nodes meet in one room; when its node is killed the others meet again on a survivor within 15 s', async () => {
  const redis = await startRedis();
  const nodes = [];
  try {
    await startNodes(redis, 3, nodes);
    const names = ['Ada', 'Bob', 'Cy'];
    const people = [];
    for (let i = 0; i < 3; i++) {
      const p = await h.openParticipant(browser, `${nodes[i].http}/?simulcast=0`);
      await h.join(p.page, 'cluster', names[i]);
      people.push(p);
    }
    for (let i = 0; i < 3; i++) await seesVideo(people[i].page, names.filter((_, j) => j !== i));

    const lists = await Promise.all(nodes.map((n) => getJson(n, '/api/rooms')));
    for (const list of lists) {
      assert.deepEqual(list.map((r) => [r.id, r.participant_count]), [['cluster', 3]], 'every node lists the room once');
    }
    const owner = lists[0][0].node;
    assert.ok(lists.every((l) => l[0].node === owner), 'with the same owner');
    const ids = await Promise.all(nodes.map(nodeId));
    const dead = ids.indexOf(owner);
    assert.notEqual(dead, -1);
    console.log(`cluster: room on node ${dead + 1} of 3 (${owner})`);
    await h.screenshot(people[(dead + 1) % 3].page, 'cluster-three-nodes');

    const survivors = [0, 1, 2].filter((i) => i !== dead);
    const before = await Promise.all(survivors.map((i) => selfId(people[i].page)));
    const killedAt = Date.now();
    process.kill(nodes[dead].pid, 'SIGKILL');
    for (const [k, i] of survivors.entries()) {
      const page = people[i].page;
      await h.waitFor(`${names[i]} to join again`, async () => {
        const id = await selfId(page);
        return id && id !== before[k];
      }, { timeout: 15000 });
      const other = names[survivors.find((j) => j !== i)];
      await h.waitFor(`${names[i]} to see ${other} again`, async () => await framesOf(page, other) > 10, { timeout: 15000 });
    }
    const elapsed = (Date.now() - killedAt) / 1000;
    console.log(`cluster: the others decode each other again ${elapsed.toFixed(1)} s after the kill`);
    assert.ok(elapsed < 15, `${elapsed} s`);
    const survivor = nodes[survivors[0]];
    const after = await getJson(survivor, '/api/rooms');
    assert.deepEqual(after.map((r) => [r.id, r.participant_count]), [['cluster', 2]]);
    assert.ok(after[0].node !== owner && ids.includes(after[0].node), 're-created on a surviving node');
    await h.screenshot(people[survivors[0]].page, 'cluster-after-node-lost');
    for (const p of people) await p.context.close();
  } finally {
    for (const node of nodes) await node.stop();
    await redis.stop();
  }
});

test('with Redis stopped a running room keeps its media and new joins are told unavailable; with Redis back they work', async () => {
  let redis = await startRedis();
  const nodes = [];
  try {
    await startNodes(redis, 2, nodes);
    const ada = await h.openParticipant(browser, `${nodes[0].http}/?simulcast=0`);
    await h.join(ada.page, 'outage', 'Ada');
    const bob = await h.openParticipant(browser, `${nodes[1].http}/?simulcast=0`);
    await h.join(bob.page, 'outage', 'Bob');
    await seesVideo(ada.page, ['Bob']);
    await seesVideo(bob.page, ['Ada']);

    // Cy comes through the node that holds the room: a Redis that restarts empty has forgotten
    // every claim, and until that node's next heartbeat claims the room again, another node
    // could open a second one (which the holder then hands over: tests/cluster.rs).
    const owner = (await getJson(nodes[0], '/api/rooms'))[0].node;
    const holder = nodes[(await Promise.all(nodes.map(nodeId))).indexOf(owner)];
    await redis.stop();
    const frames = [await framesOf(ada.page, 'Bob'), await framesOf(bob.page, 'Ada')];
    const cy = await h.openParticipant(browser, `${holder.http}/?simulcast=0`);
    await h.join(cy.page, 'outage', 'Cy');
    const notice = await h.waitFor('Cy to be told the cluster is unavailable', () => cy.page.$eval('#notice', (n) => !n.hidden && n.textContent));
    console.log(`cluster: Cy told: ${notice}`);
    assert.match(notice, /unavailable/);
    await h.sleep(3000);
    const now = [await framesOf(ada.page, 'Bob'), await framesOf(bob.page, 'Ada')];
    console.log(`cluster: frames decoded in 3 s without Redis: ${now[0] - frames[0]}, ${now[1] - frames[1]}`);
    assert.ok(now[0] > frames[0] + 30 && now[1] > frames[1] + 30, 'the running room keeps decoding');

    redis = await startRedis(redis.port);
    await h.waitFor('Cy to join once Redis is back', async () => {
      if (await selfId(cy.page)) return true;
      if (await cy.page.isEnabled('#join')) await h.join(cy.page, 'outage', 'Cy');
      return false;
    }, { timeout: 20000, interval: 1500 });
    await seesVideo(cy.page, ['Ada', 'Bob']);
    await seesVideo(ada.page, ['Cy']);
    const rooms = await getJson(nodes[0], '/api/rooms');
    assert.deepEqual(rooms.map((r) => [r.id, r.participant_count]), [['outage', 3]], 'one room, everyone in it');
    for (const p of [ada, bob, cy]) await p.context.close();
  } finally {
    for (const node of nodes) await node.stop();
    await redis.stop();
  }
});
