// The web app opened with `?token=` on a server started with --token, in headless Chromium against the real server:
// without a token the page says how to add one (401), with a wrong one that it is not valid (403), with the right
// one on a full server that it is full and when to try again (503 + Retry-After), and once a slot is free the same
// token gets a live, restyled session that Stop ends (its DELETE carries the token too).
import { chromiumArgs } from '../../bench/browser-bench.js';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { WebSocket } from 'ws';
import type { RunningServer } from '../../server/server.js';
import { DEFAULT_MODEL, startTestServer } from '../support/server-harness.js';
import { requireChromium, requireDefaultModel } from '../support/test-dependency.js';
import { until } from '../support/until.js';
import { openAndStart } from '../support/web-app-page.js';

const { executablePath: CHROMIUM, skip: noChromium } = requireChromium();
const skip = noChromium || requireDefaultModel();
const TOKEN = 'webapp-token-test';

// page.evaluate callbacks run in the page; this file compiles without the DOM lib.
declare const document: any;

// Each refusal is one HTTP round trip after the camera starts: 10 s is slack for a loaded machine. Going live needs
// ICE + DTLS + a keyframe + a model run (about a second idle): 20 s.
const REFUSED_WITHIN_MS = 10_000;
const LIVE_WITHIN_MS = 20_000;

describe('web app with ?token= on a token-protected server', { skip, timeout: 120_000 }, () => {
  let server: RunningServer;
  let browser: Browser;

  before(async () => {
    server = await startTestServer({ modelDir: DEFAULT_MODEL, token: TOKEN, maxSessions: 1, admissionCeiling: Number.POSITIVE_INFINITY });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: chromiumArgs(),
    });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  async function pressStart(query: string): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    await openAndStart(page, `${server.url}/${query}`);
    return page;
  }

  async function notice(page: Page, title: string): Promise<string> {
    await page
      .waitForFunction((t: string) => document.getElementById('notice-title').textContent === t, title, { timeout: REFUSED_WITHIN_MS })
      .catch(async (error: Error) => {
        throw new Error(
          `${error.message}; the page shows "${await page.evaluate(() => document.getElementById('notice-title').textContent as string)}"`,
        );
      });
    return page.evaluate(() => document.getElementById('notice-detail').textContent as string);
  }

  test('no token: 401, and the page says to open it as /?token=<token>', async () => {
    const page = await pressStart('');
    assert.match(await notice(page, 'The server refused the stream'), /needs an access token: open the page as \/\?token=<token>/);
    assert.equal(server.sessions.size, 0);
    await page.context().close();
  });

  test('a wrong token: 403, and the page says the token is not valid', async () => {
    const page = await pressStart('?token=not-the-token');
    assert.match(await notice(page, 'The server refused the stream'), /access token in the page URL \(\?token=\.\.\.\) is not valid/);
    assert.equal(server.sessions.size, 0);
    await page.context().close();
  });

  test('the right token on a full server: 503, and the page says so and when to try again; then it goes live', async () => {
    // The one --max-sessions slot, held by a WebSocket client (which takes the token as ?token=).
    const holder = new WebSocket(`${server.url.replace('http', 'ws')}/ws?token=${TOKEN}`);
    await until('the WebSocket session to hold the slot', () => server.sessions.size === 1, 10_000);
    const page = await pressStart(`?token=${TOKEN}`);
    const detail = await notice(page, 'The server is full');
    assert.match(detail, /--max-sessions/, 'the server’s own reason');
    assert.match(detail, /Try again in \d+\u00a0s\./);
    holder.close();
    await until('the slot to be free', () => server.sessions.size === 0, 10_000);
    await page.click('#start');
    await page
      .waitForFunction(
        () => {
          const v = document.getElementById('output');
          return v.readyState >= 2 && v.videoWidth > 0 && !v.paused;
        },
        undefined,
        { timeout: LIVE_WITHIN_MS },
      )
      .catch(async (error: Error) => {
        throw new Error(
          `${error.message}; the page shows "${await page.evaluate(() => document.getElementById('notice-title').textContent as string)}"`,
        );
      });
    assert.equal(server.sessions.size, 1);
    const deleted = page.waitForResponse((r) => r.request().method() === 'DELETE' && new URL(r.url()).pathname.startsWith('/sessions/'), {
      timeout: 10_000,
    });
    await page.click('#start'); // Stop: DELETE with the token
    assert.equal((await deleted).status(), 200, 'the DELETE carried the token');
    await until('Stop to end the session', () => server.sessions.size === 0, 10_000);
    await page.context().close();
  });

  test('a session the server ends (an operator DELETE) tells the page why', async () => {
    const page = await pressStart(`?token=${TOKEN}`);
    const session = await until('the session to start', () => server.sessions.all()[0], LIVE_WITHIN_MS);
    // The server's latency in the stats overlay came over the DataChannel: it is open.
    await page.waitForFunction(() => /\d+ \/ \d+ ms/.test(document.querySelector('[data-stat="latency"]')?.textContent ?? ''), undefined, {
      timeout: LIVE_WITHIN_MS,
    });
    assert.equal(
      (await fetch(`${server.url}/sessions/${session.id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${TOKEN}` } })).status,
      200,
    );
    assert.match(await notice(page, 'The server ended the session'), /^DELETE by client\. Press Start to connect again\.$/);
    await page.context().close();
  });

  // Last: it restarts the server. A shutdown tells the page it may publish again (retry: true; its output falling
  // silent would lead there too); the page retries with backoff (0.5, 1, 2, 4, 8 s) and so reaches the server once
  // it is back on the same port.
  test('a server restart: the page publishes again by itself, with its token, once the server is back', async () => {
    const page = await pressStart(`?token=${TOKEN}`);
    await page.waitForFunction(() => /\d+ \/ \d+ ms/.test(document.querySelector('[data-stat="latency"]')?.textContent ?? ''), undefined, {
      timeout: LIVE_WITHIN_MS,
    });
    const port = server.port;
    await server.close();
    await page.waitForFunction(() => document.getElementById('status').textContent === 'Reconnecting…', undefined, {
      timeout: REFUSED_WITHIN_MS,
    });
    server = await startTestServer({ modelDir: DEFAULT_MODEL, token: TOKEN, port, admissionCeiling: Number.POSITIVE_INFINITY });
    // Within the next retry (at most 4 s apart) plus the connect.
    await until('the page to publish to the restarted server', () => server.sessions.size === 1, 4000 + LIVE_WITHIN_MS, 100);
    await page.waitForFunction(() => document.getElementById('status').dataset.state === 'live', undefined, { timeout: LIVE_WITHIN_MS });
    await page.context().close();
  });
});
