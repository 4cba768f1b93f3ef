// End-to-end: mute. A participant's mute buttons stop what they publish of that kind at every
// subscriber (the server forwards none of it), everyone's page shows it, and unmuting resumes.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let browser;
before(async () => { browser = await h.launchBrowser(); });
after(async () => { await browser?.close(); });

/** Bytes `page` has received of `kind` from the participant named `name`. */
async function bytesFrom(page, name, kind) {
  return page.evaluate(async ([who, what]) => {
    const tile = [...document.querySelectorAll('.tile.remote')].find((t) => t.querySelector('.name').textContent === who);
    const track = tile?.querySelector('video').srcObject?.getTracks().find((t) => t.kind === what);
    let bytes = null;
    (await window.roomcast.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.trackIdentifier === track?.id) bytes = r.bytesReceived;
    });
    return bytes;
  }, [name, kind]);
}

test('muting stops a kind at every subscriber and shows it; unmuting resumes within a second', async () => {
  const server = await h.startServer();
  try {
    const ada = await h.openParticipant(browser, `${server.http}/?simulcast=0`);
    await h.join(ada.page, 'mute', 'Ada');
    const others = [];
    for (const name of ['Bob', 'Cy']) {
      const p = await h.openParticipant(browser, `${server.http}/?simulcast=0`);
      await h.join(p.page, 'mute', name);
      others.push(p);
    }
    for (const { page } of others) {
      await h.waitFor('Ada\'s audio and video to flow', async () => (await bytesFrom(page, 'Ada', 'audio')) > 0 && (await h.inboundVideoOf(page, 'Ada'))?.frames > 10);
    }

    await ada.page.click('#mute-audio');
    assert.equal(await ada.page.getAttribute('#mute-audio', 'aria-pressed'), 'true');
    for (const { page } of others) {
      await h.waitFor('Ada\'s tile to show her muted', async () => (await h.tileClasses(page, 'Ada')).includes('audio-muted'));
    }
    await h.waitFor('Ada\'s own tile to show her muted', async () => (await h.tileClasses(ada.page, 'Ada (you)')).includes('audio-muted'));
    await h.sleep(500);
    const before = await Promise.all(others.map(({ page }) => bytesFrom(page, 'Ada', 'audio')));
    await h.sleep(2000);
    const after = await Promise.all(others.map(({ page }) => bytesFrom(page, 'Ada', 'audio')));
    console.log(`mute: audio bytes from Ada in 2 s of mute: ${after.map((a, i) => a - before[i]).join(', ')}`);
    after.forEach((a, i) => assert.equal(a, before[i], 'not one audio byte while muted'));
    await h.screenshot(others[0].page, 'mute-ada-muted');

    const unmutedAt = Date.now();
    await ada.page.click('#mute-audio');
    await h.waitFor('Ada\'s audio to reach Bob again', async () => (await bytesFrom(others[0].page, 'Ada', 'audio')) > after[0], { timeout: 5000, interval: 50 });
    const seconds = (Date.now() - unmutedAt) / 1000;
    console.log(`mute: audio back after ${seconds.toFixed(2)} s`);
    assert.ok(seconds <= 1, `unmuted audio resumes within 1 s: ${seconds} s`);
    await h.waitFor('Ada\'s tile to show her unmuted', async () => !(await h.tileClasses(others[0].page, 'Ada')).includes('audio-muted'));

    // The camera: its bytes stop too, and resume on a keyframe.
    await ada.page.click('#mute-video');
    await h.waitFor('Bob to see Ada\'s camera off', async () => (await h.tileClasses(others[0].page, 'Ada')).includes('video-muted'));
    await h.sleep(500);
    const videoBefore = await bytesFrom(others[0].page, 'Ada', 'video');
    await h.sleep(1500);
    assert.equal(await bytesFrom(others[0].page, 'Ada', 'video'), videoBefore, 'no video bytes while the camera is off');
    const framesBefore = (await h.inboundVideoOf(others[0].page, 'Ada')).frames;
    const cameraAt = Date.now();
    await ada.page.click('#mute-video');
    await h.waitFor('Bob to decode Ada\'s camera again', async () => (await h.inboundVideoOf(others[0].page, 'Ada')).frames > framesBefore, { timeout: 5000, interval: 50 });
    console.log(`mute: video decoding again after ${((Date.now() - cameraAt) / 1000).toFixed(2)} s`);
  } finally {
    await server.stop();
  }
});
