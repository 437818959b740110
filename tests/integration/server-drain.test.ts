// Draining a server (POST /admin/drain, or drain() as SIGTERM on a worker calls it): new publishers are refused
// with 503 + Retry-After at once, the live session keeps streaming until it ends by itself, then the server
// closes; a session that does not end is ended at --drain-timeout-ms. Real server, real werift publisher.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLoopbackClient, loadTestPhoto, makePanClip } from '../../bench/loopback-client.js';
import type { RgbImage } from '../../frame/video-frame.js';
import { SD_TINY_MODEL, startTestServer } from '../support/server-harness.js';
import { until } from '../support/until.js';

const ADMIN = 'drain-admin-token';
let clip: RgbImage[] | undefined;

async function publisher(url: string, onOutputFrame: () => void = () => {}) {
  clip ??= await makePanClip(await loadTestPhoto(), 320, 240, 10);
  return createLoopbackClient({
    whipUrl: `${url}/whip`,
    codec: 'VP8',
    fps: 10,
    frames: clip,
    width: 320,
    height: 240,
    loop: true,
    onOutputFrame,
  });
}

const offer = (url: string) => fetch(`${url}/whip`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: 'v=0\r\n' });

test(
  'POST /admin/drain: the live session carries on, new publishers get 503, the server closes when the session ends',
  { timeout: 60_000 },
  async () => {
    const server = await startTestServer({ modelDir: SD_TINY_MODEL, adminToken: ADMIN });
    let frames = 0;
    const client = await publisher(server.url, () => frames++);
    try {
      await until('restyled frames', () => frames > 2 || undefined, 20_000);
      const drain = (authorization?: string) =>
        fetch(`${server.url}/admin/drain`, { method: 'POST', headers: authorization ? { Authorization: authorization } : {} });
      assert.equal((await drain()).status, 401);
      assert.equal((await drain('Bearer not-it')).status, 403);
      const accepted = await drain(`Bearer ${ADMIN}`);
      assert.equal(accepted.status, 202);
      assert.deepEqual(Object.keys((await accepted.json()) as object).sort(), ['deadlineMs', 'draining', 'sessions', 'viewers']);
      assert.equal(((await (await fetch(`${server.url}/healthz`)).json()) as { draining: boolean }).draining, true);
      const refused = await offer(server.url);
      assert.equal(refused.status, 503);
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
      assert.match(await refused.text(), /draining/);
      const before = frames;
      await until('the session keeps streaming while the server drains', () => frames > before + 5 || undefined, 20_000);
      let closed = false;
      void server.drained.then(() => (closed = true));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(closed, false, 'the server waits for its session');
      await client.close();
      await until('the server closed once its session ended', () => closed || undefined, 5000);
      await assert.rejects(fetch(`${server.url}/healthz`), 'nothing listens any more');
    } finally {
      await client.close();
      await server.close();
    }
  },
);

test(
  'a session that does not end is ended at --drain-timeout-ms; without an admin token the endpoint is off',
  { timeout: 60_000 },
  async () => {
    const server = await startTestServer({ modelDir: SD_TINY_MODEL, drainTimeoutMs: 500 });
    const client = await publisher(server.url);
    try {
      const off = await fetch(`${server.url}/admin/drain`, { method: 'POST', headers: { Authorization: 'Bearer anything' } });
      assert.equal(off.status, 403);
      assert.match(await off.text(), /--admin-token/);
      const started = Date.now();
      await server.drain('test');
      const tookMs = Date.now() - started;
      assert.ok(tookMs >= 450, `drained after ${tookMs} ms, before the timeout`);
      assert.equal(server.sessions.size, 0);
    } finally {
      await client.close();
      await server.close();
    }
  },
);
