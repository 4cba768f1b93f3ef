// Test harness: starts the real roomcast binary and drives its client page in headless Chromium.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..');
// Where Cargo put the binary: ROOMCAST_BIN, else CARGO_TARGET_DIR (relative to the repository,
// where tests/run.sh runs cargo), else target/.
const BINARY = process.env.ROOMCAST_BIN
  || path.join(path.resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target'), 'debug', 'roomcast');
const ARTIFACTS = path.join(__dirname, 'artifacts');

/** Starts the roomcast binary on free loopback ports. `wrap` is a command the binary is run
 * through (`[...wrap, BINARY, ...args]`), e.g. to give it a mount namespace of its own. Resolves
 * once it prints its URLs. */
async function startServer(args = [], { logLevel, wrap = [] } = {}) {
  if (!fs.existsSync(BINARY)) {
    throw new Error(`no roomcast binary at ${BINARY}: run cargo build (set ROOMCAST_BIN or CARGO_TARGET_DIR if it is elsewhere)`);
  }
  const certDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'roomcast-certs-'));
  const command = [...wrap, BINARY];
  const child = spawn(command[0], [...command.slice(1), '--http', '127.0.0.1:0', '--https', '127.0.0.1:0', '--cert-dir', certDir, '--media-ip', '127.0.0.1', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: logLevel || process.env.RUST_LOG || 'info,webrtc=warn' },
  });
  let logs = '';
  child.stderr.on('data', (d) => { logs += d; });
  const logTail = () => `roomcast ${child.pid}'s last log lines:\n${logs.trimEnd().split('\n').slice(-15).join('\n')}`;
  running.add(logTail);
  child.on('exit', () => running.delete(logTail));
  if (process.env.E2E_SERVER_LOG) { const f = fs.createWriteStream(`${process.env.E2E_SERVER_LOG}.${child.pid}`); child.stdout.pipe(f); child.stderr.pipe(f); }
  const urls = {};
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${logs}`)), 20000);
      child.on('error', (e) => { clearTimeout(timer); reject(new Error(`could not start ${BINARY}: ${e.message}`)); });
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${logs}`)); });
      child.stdout.on('data', (d) => {
        for (const m of String(d).matchAll(/open (https?):\/\/(\S+)/g)) urls[m[1]] = `${m[1]}://${m[2]}`;
        if (urls.http && urls.https) { clearTimeout(timer); resolve(); }
      });
    });
  } catch (e) {
    // A server that did not start leaves nothing behind to keep the test process alive.
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(certDir, { recursive: true, force: true });
    throw e;
  }
  return {
    ...urls,
    pid: child.pid,
    logs: () => logs,
    async stop() {
      // Already gone (exited, or killed by a test): `exit` will not come again.
      if (child.exitCode !== null || child.signalCode !== null) {
        fs.rmSync(certDir, { recursive: true, force: true });
        return child.exitCode ?? child.signalCode;
      }
      const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      const code = await exited;
      fs.rmSync(certDir, { recursive: true, force: true });
      return code;
    },
  };
}

async function freeUdpPort() {
  const dgram = require('node:dgram');
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise((resolve) => socket.close(resolve));
  return port;
}

/** Resolves once a STUN Binding request to 127.0.0.1:port gets a response. */
async function stunAnswers(port) {
  const dgram = require('node:dgram');
  const socket = dgram.createSocket('udp4');
  // Binding request: type 0x0001, length 0, magic cookie, 12-byte transaction id.
  const request = Buffer.concat([Buffer.from([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]), require('node:crypto').randomBytes(12)]);
  try {
    return await new Promise((resolve) => {
      socket.on('message', () => resolve(true));
      socket.on('error', () => resolve(false));
      socket.send(request, port, '127.0.0.1');
      setTimeout(() => resolve(false), 200);
    });
  } finally {
    socket.close();
  }
}

/** Starts coturn on loopback in shared-secret mode; resolves once it answers STUN. */
async function startTurn(secret) {
  const port = await freeUdpPort();
  const child = spawn('turnserver', ['--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${port}`,
    '--min-port=49160', '--max-port=49200', '--use-auth-secret', `--static-auth-secret=${secret}`,
    '--realm=roomcast.test', '--no-tls', '--no-dtls', '--no-cli', '--allow-loopback-peers', '--fingerprint',
    '--log-file=stdout', '--simple-log'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  child.stdout.on('data', (d) => { logs += d; });
  child.stderr.on('data', (d) => { logs += d; });
  let exited = null;
  child.on('exit', (code) => { exited = code; });
  try {
    await waitFor('coturn to answer STUN', () => exited === null && stunAnswers(port), { timeout: 10000 });
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${e.message}\ncoturn (exit code ${exited}) said:\n${logs}`);
  }
  return {
    url: `turn:127.0.0.1:${port}?transport=udp`,
    logs: () => logs,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Headless Chromium with fake media devices; `fakeDevices` is the value of
 * `--use-fake-device-for-media-stream` (e.g. `device-count=2` for two cameras). */
async function launchBrowser({ fakeDevices = '' } = {}) {
  const fake = fakeDevices ? `--use-fake-device-for-media-stream=${fakeDevices}` : '--use-fake-device-for-media-stream';
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      fake, '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required'],
  });
}

/** A participant: one browser context with one page of the client. */
async function openParticipant(browser, baseUrl, { ignoreHTTPSErrors = false } = {}) {
  const context = await browser.newContext({ ignoreHTTPSErrors, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspViolations.push(`${page.url()}: ${m.text()}`); });
  await page.goto(baseUrl);
  return { context, page };
}

/** Everything the pages' Content-Security-Policy blocked so far: a page that works must need none of it. */
const cspViolations = [];

async function join(page, room, name) {
  await page.fill('#room', room);
  await page.fill('#name', name);
  await page.click('#join');
}

/** What a participant's page shows of the others: one entry per remote tile. */
async function remoteTiles(page) {
  return page.$$eval('.tile.remote', (tiles) => tiles.map((t) => ({
    id: t.dataset.participant,
    name: t.querySelector('.name').textContent,
    videoWidth: t.querySelector('video').videoWidth,
    audioTracks: t.querySelector('video').srcObject?.getAudioTracks().length || 0,
  })));
}

/** The classes of the tile named `name` in `page` ("Ada (you)" for Ada's own), or null. */
async function tileClasses(page, name) {
  return page.evaluate((who) => {
    const tile = [...document.querySelectorAll('.tile')].find((t) => t.querySelector('.name').textContent === who);
    return tile ? [...tile.classList] : null;
  }, name);
}

/** Per remote track: frames decoded (video) or bytes received (audio), from the client's getStats. */
async function inboundStats(page) {
  return page.evaluate(async () => {
    const pc = window.roomcast.pc;
    if (!pc) return {};
    const out = {};
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp') out[r.trackIdentifier] = { kind: r.kind, framesDecoded: r.framesDecoded || 0, bytes: r.bytesReceived || 0 };
    });
    return out;
  });
}

/** The video `page` receives from the participant named `name`: decoded size, frames, frame
 * rate and freezes, from getStats (tracks are identified by the stream the SFU names after the
 * publisher, whose tile carries its name). */
async function inboundVideoOf(page, name) {
  return page.evaluate(async (who) => {
    const tile = [...document.querySelectorAll('.tile.remote')].find((t) => t.querySelector('.name').textContent === who);
    const stream = tile?.querySelector('video').srcObject;
    const trackId = stream?.getVideoTracks()[0]?.id;
    let video = null;
    (await window.roomcast.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video' && r.trackIdentifier === trackId) {
        video = { width: r.frameWidth || 0, frames: r.framesDecoded || 0, fps: r.framesPerSecond || 0, freezes: r.freezeCount || 0, bytes: r.bytesReceived || 0 };
      }
    });
    return video;
  }, name);
}

/** What each running server logged last: a timed-out wait prints it, so that a failure seen
 * only in CI says what the server was doing. */
const running = new Set();

async function waitFor(what, check, { timeout = 20000, interval = 250 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) { last = e; }
    if (Date.now() > deadline) {
      const logs = [...running].map((tail) => tail()).join('\n');
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Adds an iptables rule on loopback input that drops UDP matching `match` (e.g. a hashlimit
 * policer); returns a function that removes it. Input, not output: a packet dropped in output
 * makes the sender's sendto fail instead of vanishing on the wire. */
function dropOnLoopback(match) {
  const rule = ['INPUT', '-i', 'lo', '-p', 'udp', ...match, '-j', 'DROP'];
  execFileSync('iptables', ['-I', ...rule]);
  return () => execFileSync('iptables', ['-D', ...rule]);
}

/** The UDP port this page's media leaves from: the local side of the selected candidate pair. */
async function mediaPort(page) {
  return waitFor('a selected candidate pair', () => page.evaluate(async () => {
    const stats = await window.roomcast.pc.getStats();
    let port = null;
    stats.forEach((r) => {
      if (r.type === 'transport' && r.selectedCandidatePairId) {
        port = stats.get(stats.get(r.selectedCandidatePairId).localCandidateId).port;
      }
    });
    return port;
  }));
}

/** Every UDP port this page's connection has a local candidate on. ICE may move the media to
 * another candidate pair, so a rule meant to hold for the whole connection covers all of them,
 * not the selected pair's alone. */
async function mediaPorts(page) {
  return waitFor('local candidates', () => page.evaluate(async () => {
    const stats = await window.roomcast.pc.getStats();
    const ports = new Set();
    stats.forEach((r) => {
      if (r.type === 'local-candidate' && r.protocol === 'udp' && r.port) ports.add(r.port);
    });
    return ports.size > 0 && [...ports];
  }));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

module.exports = { BINARY, cspViolations, dropOnLoopback, mediaPort, mediaPorts, freeUdpPort, startServer, startTurn, launchBrowser, openParticipant, join, remoteTiles, tileClasses, inboundStats, inboundVideoOf, waitFor, sleep, screenshot };
