// WHEP viewers at the edges a user meets: a token-protected server's viewer receiving media (and one without the
// token refused), --max-viewers answering 503 with Retry-After until a slot frees, and an H.264-only viewer of a VP8
// stream, whose own encoder must close when the viewer vanishes (no DELETE) and when the stream itself ends.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadTestPhoto, makePanClip, publishLoopedClip, type LoopbackClient } from '../../bench/loopback-client.js';
import { startWhepViewer, type WhepViewer } from '../../bench/whep-viewer.js';
import type { RgbImage } from '../../frame/video-frame.js';
import type { RunningServer } from '../../server/server.js';
import { liveResources } from '../../stream/resource-counters.js';
import { DEFAULT_MODEL, startTestServer } from '../support/server-harness.js';
import { requireDefaultModel } from '../support/test-dependency.js';
import { until } from '../support/until.js';

const skip = requireDefaultModel();
const TOKEN = 'whep-viewers-token';
const AUTH = { Authorization: `Bearer ${TOKEN}` };
// The server's media timeout: short, so vanished peers are found quickly, but it also counts from the answer until a
// publisher's first packet, which ICE + DTLS (werift's, in JavaScript) can delay by seconds on a loaded 2-core
// machine: 5 s.
const MEDIA_TIMEOUT_MS = 5000;
// Waiting for frames: the first needs ICE + DTLS + a keyframe + a model run, about a second on an idle 2-core
// machine; 20 s is slack for a loaded one. A broken path never delivers, so the bound only decides when we give up.
const FRAMES_WITHIN_MS = 20_000;

let server: RunningServer;
let clip: RgbImage[];
const publishers: LoopbackClient[] = [];
const viewers: WhepViewer[] = [];

before(async () => {
  if (skip) return;
  server = await startTestServer({
    modelDir: DEFAULT_MODEL,
    token: TOKEN,
    maxViewers: 2,
    mediaTimeoutMs: MEDIA_TIMEOUT_MS,
    admissionCeiling: Number.POSITIVE_INFINITY,
  });
  clip = await makePanClip(await loadTestPhoto(), 320, 240, 30);
});
after(async () => {
  for (const v of viewers) await v.close({ deleteResource: false }).catch(() => undefined);
  for (const p of publishers) await p.close().catch(() => undefined);
  await server?.close();
});

async function publish(name: string): Promise<LoopbackClient> {
  const p = await publishLoopedClip(`${server.url}/whip/${name}`, clip, { token: TOKEN, direction: 'sendonly' });
  publishers.push(p);
  return p;
}

async function watch(name: string, codec: 'VP8' | 'H264' = 'VP8'): Promise<WhepViewer> {
  const v = await startWhepViewer({ whepUrl: `${server.url}/whep/${name}`, codec, token: TOKEN });
  viewers.push(v);
  return v;
}

async function allFreed(): Promise<void> {
  await until(
    `every resource to be freed: ${JSON.stringify(liveResources())}`,
    () => Object.values(liveResources()).every((n) => n === 0),
    10_000,
  );
}

test(
  'a token-protected server: a viewer with the token receives restyled media; without it, 401; with a wrong one, 403',
  { skip, timeout: 60_000 },
  async () => {
    const pub = await publish('guarded');
    const v = await watch('guarded');
    await until('the viewer to decode frames', () => v.stats().framesDecoded >= 5, FRAMES_WITHIN_MS);
    assert.equal(v.stats().decodeErrors, 0);
    for (const [headers, status] of [
      [{}, 401],
      [{ Authorization: 'Bearer wrong' }, 403],
    ] as const) {
      const res = await fetch(`${server.url}/whep/guarded`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', ...headers },
        body: 'v=0\r\n',
      });
      assert.equal(res.status, status);
    }
    // The viewer resource needs the token too: DELETE without it is refused, with it the viewer ends.
    assert.equal((await fetch(v.location, { method: 'DELETE' })).status, 401);
    assert.equal((await fetch(v.location, { method: 'DELETE', headers: AUTH })).status, 200);
    viewers.splice(viewers.indexOf(v), 1);
    await v.close({ deleteResource: false });
    await pub.close();
    publishers.splice(publishers.indexOf(pub), 1);
    await allFreed();
  },
);

test(
  '--max-viewers: the viewer over the limit gets 503 with Retry-After, and gets in once a slot is free',
  { skip, timeout: 60_000 },
  async () => {
    const pub = await publish('popular');
    const a = await watch('popular');
    const b = await watch('popular');
    const over = await fetch(`${server.url}/whep/popular`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', ...AUTH },
      body: 'v=0\r\n',
    });
    assert.equal(over.status, 503);
    assert.match(over.headers.get('retry-after') ?? '', /^\d+$/);
    assert.match(await over.text(), /--max-viewers/);
    await a.close(); // DELETE frees its slot
    viewers.splice(viewers.indexOf(a), 1);
    const c = await watch('popular');
    await until('the late viewer to decode frames', () => c.stats().framesDecoded >= 3, FRAMES_WITHIN_MS);
    for (const v of [b, c]) {
      await v.close();
      viewers.splice(viewers.indexOf(v), 1);
    }
    await pub.close();
    publishers.splice(publishers.indexOf(pub), 1);
    await allFreed();
  },
);

test(
  'an H.264-only viewer of a VP8 stream gets its own encoder, closed when the viewer vanishes without DELETE',
  { skip, timeout: 60_000 },
  async () => {
    const pub = await publish('mixed');
    const vp8 = await watch('mixed');
    await until('the VP8 viewer to decode frames', () => vp8.stats().framesDecoded >= 3, FRAMES_WITHIN_MS);
    const h264 = await watch('mixed', 'H264');
    await until('the H.264 viewer to decode frames', () => h264.stats().framesDecoded >= 3, FRAMES_WITHIN_MS);
    assert.equal(liveResources().encoders, 2, 'one encoder per codec');
    // Gone without DELETE and without a DTLS close (werift sends none): the server notices the silence after
    // MEDIA_TIMEOUT_MS; 10 s more is slack for a loaded machine's timers.
    await h264.close({ deleteResource: false });
    viewers.splice(viewers.indexOf(h264), 1);
    await until('the vanished H.264 viewer to be dropped', () => server.sessions.viewerCount === 1, MEDIA_TIMEOUT_MS + 10_000);
    await until('the H.264 encoder to close', () => liveResources().encoders === 1, 5000);
    const before = vp8.stats().framesDecoded;
    await until('the VP8 viewer to keep decoding', () => vp8.stats().framesDecoded >= before + 3, FRAMES_WITHIN_MS);
    await vp8.close();
    viewers.splice(viewers.indexOf(vp8), 1);
    await pub.close();
    publishers.splice(publishers.indexOf(pub), 1);
    await allFreed();
  },
);

test(
  "an H.264-only viewer whose stream ends: the viewer is ended and its encoder closed with the stream's",
  { skip, timeout: 60_000 },
  async () => {
    const pub = await publish('ending');
    const h264 = await watch('ending', 'H264');
    await until('the H.264 viewer to decode frames', () => h264.stats().framesDecoded >= 3, FRAMES_WITHIN_MS);
    assert.equal(liveResources().encoders, 1, 'only the H.264 encoder: no viewer asked for VP8');
    await pub.close(); // DELETE: the stream ends
    publishers.splice(publishers.indexOf(pub), 1);
    assert.equal(server.sessions.viewerCount, 0, 'the viewer ended with its stream');
    assert.equal((await fetch(h264.location, { headers: AUTH })).status, 404, 'the viewer resource is gone');
    assert.equal(liveResources().encoders, 0, 'the H.264 encoder closed with the stream');
    // The test's own viewer decodes in this process with the same codec classes: close it before counting the rest.
    await h264.close({ deleteResource: false });
    viewers.splice(viewers.indexOf(h264), 1);
    await allFreed();
  },
);
