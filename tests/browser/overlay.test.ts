// The overlay page (/overlay/<name>, an OBS browser source) in headless Chromium against the real server: it says
// "waiting for <name>" while nothing is published and looks again after 1 s, then every 2 s, waits as long
// as a 503's Retry-After says; when the stream ends its probe finds the viewer gone and it plays again once the
// publisher is back, and a connection that stalls while its viewer lives is dropped by the watchdog. Backoff and Retry-After run on Playwright's fake clock (each wait is stepped, not
// slept); the stall needs real media, so it runs on the real clock with its margins written next to it.
import { chromiumArgs } from '../../bench/browser-bench.js';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createLoopbackClient, loadTestPhoto, makePanClip, type LoopbackClient } from '../../bench/loopback-client.js';
import { startWhepViewer } from '../../bench/whep-viewer.js';
import type { RgbImage } from '../../frame/video-frame.js';
import type { RunningServer } from '../../server/server.js';
import { DEFAULT_MODEL, startTestServer } from '../support/server-harness.js';
import { requireChromium, requireDefaultModel } from '../support/test-dependency.js';
import { until } from '../support/until.js';

const { executablePath: CHROMIUM, skip: noChromium } = requireChromium();
const skip = noChromium || requireDefaultModel();

// page.evaluate callbacks run in the page; this file compiles without the DOM lib.
declare const document: any;

/** The overlay's watchdog drops a connection that shows no new frame for this long (client/src/overlay.ts). */
const STALL_MS = 8000;
// Real-clock waits: a first picture needs ICE + DTLS + a keyframe + a model run (about a second idle); 20 s is
// slack for a loaded 2-core machine, and a broken path never plays at all.
const PLAYS_WITHIN_MS = 20_000;

describe('overlay page /overlay/<name>', { skip, timeout: 120_000 }, () => {
  let server: RunningServer;
  let browser: Browser;
  let clip: RgbImage[];
  const contexts: BrowserContext[] = [];
  const publishers: LoopbackClient[] = [];

  before(async () => {
    // One viewer slot, so a second viewer meets the real server's 503 with Retry-After.
    // A stalled publisher keeps its stream for 30 s (--media-timeout-ms), longer than the overlay's 8 s watchdog;
    // four sessions from loopback, for the publishers the tests hold at once.
    server = await startTestServer({
      modelDir: DEFAULT_MODEL,
      maxViewers: 1,
      maxSessionsPerClient: 4,
      mediaTimeoutMs: 30_000,
      admissionCeiling: Number.POSITIVE_INFINITY,
    });
    clip = await makePanClip(await loadTestPhoto(), 320, 240, 30);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [...chromiumArgs(), '--autoplay-policy=no-user-gesture-required'],
    });
  });
  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    for (const p of publishers) await p.close().catch(() => undefined);
    await server?.close();
  });

  async function publish(
    name: string,
    media: { loop: boolean; frames: RgbImage[] } = { loop: true, frames: clip },
  ): Promise<LoopbackClient> {
    const p = await createLoopbackClient({
      whipUrl: `${server.url}/whip/${name}`,
      codec: 'VP8',
      fps: 15,
      ...media,
      width: 320,
      height: 240,
      direction: 'sendonly',
      onOutputFrame: () => {},
    });
    publishers.push(p);
    return p;
  }

  /** A page in its own context (the fake clock belongs to a context), counting its WHEP offers for `name`. */
  async function overlay(name: string, fakeClock: boolean): Promise<{ page: Page; offers: () => number }> {
    const context = await browser.newContext();
    contexts.push(context);
    if (fakeClock) await context.clock.install();
    const page = await context.newPage();
    let offers = 0;
    page.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === `/whep/${name}`) offers++;
    });
    await page.goto(`${server.url}/overlay/${name}`);
    return { page, offers: () => offers };
  }

  const stateText = (page: Page): Promise<string> => page.evaluate(() => document.getElementById('state').textContent as string);
  const framesShown = (page: Page): Promise<number> =>
    page.evaluate(() => document.getElementById('player').getVideoPlaybackQuality().totalVideoFrames as number);
  // Polled from here, not in the page: the page's own timers are fake in the clock tests.
  const stateMatches = (page: Page, pattern: RegExp, withinMs: number): Promise<string> =>
    until(
      `the overlay state to match ${pattern}`,
      async () => {
        const text = await stateText(page);
        return pattern.test(text) ? text : undefined;
      },
      withinMs,
      50,
    );

  test('nothing published: "waiting for <name>", looked for again after 1 s, then every 2 s, and not sooner', async () => {
    const { page, offers } = await overlay('absent', true);
    const clock = page.clock;
    // Each answer is a real 404 from the server: a few ms, 5 s for a loaded machine.
    await stateMatches(page, /^waiting for “absent” · retrying in 1 s$/, 5000);
    assert.equal(offers(), 1);
    // Waiting for a publisher backs off only to 2 s (WAITING_RETRY_MS), so one that comes back is seen soon.
    for (const [waitS, nextS] of [
      [1, 2],
      [2, 2],
      [2, 2],
      [2, 2],
    ] as const) {
      const before = offers();
      await clock.runFor(waitS * 1000 - 100);
      assert.equal(offers(), before, `no retry before ${waitS} s`);
      await clock.runFor(100);
      await until(`the retry after ${waitS} s`, () => offers() === before + 1, 5000);
      await stateMatches(page, new RegExp(`^waiting for “absent” · retrying in ${nextS} s$`), 5000);
    }
    await page.context().close();
  });

  test('a full server: the overlay waits as long as Retry-After says, not its 1 s backoff', async () => {
    await publish('busy');
    // The one viewer slot taken by a werift viewer: the overlay's offer meets --max-viewers.
    const holder = await startWhepViewer({ whepUrl: `${server.url}/whep/busy` });
    try {
      const { page, offers } = await overlay('busy', true);
      const text = await stateMatches(page, /retrying in \d+ s$/, 5000);
      assert.match(text, /^The server is full\. Try again in 10\u00a0s\./, text);
      assert.match(text, /retrying in 10 s$/);
      await page.clock.runFor(9000);
      assert.equal(offers(), 1, 'no retry before Retry-After');
      await page.clock.runFor(1000);
      await until('the retry once Retry-After has passed', () => offers() === 2, 5000);
      // This page must not take the one slot from the next test once the holder leaves.
      await page.context().close();
    } finally {
      await holder.close();
    }
  });

  test('the stream ends: after 1.5 s of silence the overlay finds its viewer gone, and plays again when it is back', async () => {
    const name = 'comeback';
    const first = await publish(name);
    const { page } = await overlay(name, false);
    await until('the overlay to play', async () => (await framesShown(page)) > 10 && (await stateText(page)) === '', PLAYS_WITHIN_MS, 200);
    // The publisher ends its stream (DELETE); the server ends its viewers, and the overlay's probe (PROBE_AFTER_MS
    // 1.5 s of no new frame, checked every 0.5 s) gets a 404: +10 s for a loaded machine.
    await first.close();
    publishers.splice(publishers.indexOf(first), 1);
    await stateMatches(page, /^stream ended · retrying in 1 s$/, 1500 + 500 + 10_000);
    // The next try finds nothing published yet and says so.
    await stateMatches(page, /^waiting for “comeback” · retrying in \d+ s$/, 5000);
    await publish(name);
    const framesBefore = await framesShown(page);
    // Back within the 2 s waiting retry plus PLAYS_WITHIN_MS.
    await until(
      'the overlay to play again',
      async () => (await framesShown(page)) > framesBefore + 10 && (await stateText(page)) === '',
      2000 + PLAYS_WITHIN_MS,
      200,
    ).catch(async (error: Error) => {
      throw new Error(
        `${error.message}: state "${await stateText(page)}", ${await framesShown(page)} frames shown (${framesBefore} before); server viewers ${server.sessions.viewerCount}`,
      );
    });
    await page.context().close();
  });

  test('the stream stalls: the watchdog drops a connection that shows no new frame for 8 s although its viewer still exists', async () => {
    const name = 'stall';
    // Ten seconds of frames (the clip five times, at 15 fps), then silence on a live connection: the publisher's
    // session (and the overlay's viewer) outlive the stall, because this server's --media-timeout-ms is 30 s; only
    // the page's watchdog can tell.
    const stalled = await publish(name, { loop: false, frames: Array.from({ length: 5 }, () => clip).flat() });
    const { page } = await overlay(name, false);
    await until('the overlay to play', async () => (await framesShown(page)) > 10 && (await stateText(page)) === '', PLAYS_WITHIN_MS, 200);
    // The rest of the clip (under 10 s), then STALL_MS of no new frame, checked every 0.5 s, +10 s for a loaded
    // machine; the probe in between finds the viewer alive (200), so the reason is the watchdog's.
    await stalled.finished;
    await stateMatches(page, /^no video · retrying in 1 s$/, STALL_MS + 500 + 10_000);
    await stalled.close();
    publishers.splice(publishers.indexOf(stalled), 1);
    await page.context().close();
  });
});
