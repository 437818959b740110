// WHEP fan-out over real WebRTC: a werift WHIP publisher (sendonly, like OBS) on a named stream and werift
// WHEP viewers, through the real server and the embedded model. Specifies that every viewer gets the
// restyled stream from ONE encoder per codec, that a late viewer decodes promptly, and that every way a
// viewer or the stream ends frees what it held.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLoopbackClient, loadTestPhoto, makePanClip, publishLoopedClip, type LoopbackClient } from '../../bench/loopback-client.js';
import { liveResources } from '../../stream/resource-counters.js';
import type { RunningServer } from '../../server/server.js';
import { DEFAULT_MODEL, startTestServer } from '../support/server-harness.js';
import { startWhepViewer, type WhepViewer } from '../../bench/whep-viewer.js';
import { until } from '../support/until.js';

const STREAM = 'fanout-test';
// Waits (until(..., ms)) are for events a broken server never produces, so their bounds only decide when to give up:
// each is 10–20× what an idle 2-core machine needs (a first restyled frame ≈ 1 s, a model worker restart ≈ 2 s, a
// vanished peer = the media timeout + one check), so a loaded machine slows these tests without failing them.
// The server's media timeout: short, so vanished peers are found quickly, but it also counts from the answer until a
// publisher's first packet, which ICE + DTLS (werift's, in JavaScript) can delay by seconds on a loaded 2-core
// machine: 5 s.
const MEDIA_TIMEOUT_MS = 5000;
let server: RunningServer;
let publisher: LoopbackClient;
const viewers: WhepViewer[] = [];
let clip: Awaited<ReturnType<typeof makePanClip>>;

async function viewer(codec: 'VP8' | 'H264' = 'VP8', audio = false): Promise<WhepViewer> {
  const v = await startWhepViewer({ whepUrl: `${server.url}/whep/${STREAM}`, codec, audio });
  viewers.push(v);
  return v;
}

before(async () => {
  server = await startTestServer({
    modelDir: DEFAULT_MODEL,
    mediaTimeoutMs: MEDIA_TIMEOUT_MS,
    maxSessionsPerClient: 4,
    admissionCeiling: 1,
  });
  clip = await makePanClip(await loadTestPhoto(), 320, 240, 45);
  publisher = await createLoopbackClient({
    whipUrl: `${server.url}/whip/${STREAM}`,
    codec: 'VP8',
    fps: 15,
    frames: clip,
    width: 320,
    height: 240,
    loop: true,
    direction: 'sendonly',
    audio: true,
    onOutputFrame: () => {},
  });
});

after(async () => {
  for (const v of viewers) await v.close({ deleteResource: false });
  await publisher?.close();
  await server?.close();
});

test('two WHEP viewers both receive the restyled stream from one shared encoder', { timeout: 30_000 }, async () => {
  const a = await viewer();
  const b = await viewer();
  await until('both viewers decoded 10 frames', () => a.stats().framesDecoded >= 10 && b.stats().framesDecoded >= 10, 15_000);
  const session = server.sessions.byStreamName(STREAM)!;
  const { width, height } = server.restyler.info;
  for (const v of [a, b]) {
    const image = v.lastImage()!;
    // The model's resolution, not the publisher's 320×240: this is the restyled output, not forwarded input.
    assert.deepEqual([image.width, image.height], [width, height]);
    let sum = 0;
    for (let i = 0; i < image.data.length; i++) sum += image.data[i]!;
    const mean = sum / image.data.length;
    assert.ok(mean > 10 && mean < 245, `mean pixel ${mean}: neither black nor blank`);
  }
  assert.equal(liveResources().encoders, 1, 'one encoder for the stream, whatever the number of viewers');
  assert.equal(liveResources().viewers, 2);
  assert.equal(session.egress.stats().codecs.VP8?.consumers, 2);
  assert.equal(session.publisher.returnPath, undefined, 'a sendonly publisher gets nothing back');
  assert.match(await (await fetch(`${server.url}/metrics`)).text(), /^sds_viewers 2$/m);
  assert.equal(a.stats().decodeErrors + b.stats().decodeErrors, 0);
});

// Counted in encoded frames, not milliseconds: the join's forced keyframe comes at most one rate-limit window
// (KEYFRAME_MIN_INTERVAL_MS, 4 frames at 15 fps) after the join, plus a few frames in flight; without it the viewer
// waits for the periodic keyframe, 10 s = 150 frames away. 12 frames holds on any machine and tells the two apart.
const MAX_FRAMES_TO_FIRST_PICTURE = 12;

test('a viewer joining mid-stream decodes a keyframe forced for its join, not the periodic one', { timeout: 30_000 }, async () => {
  const session = server.sessions.byStreamName(STREAM)!;
  const encoded = (): number => session.egress.stats().codecs['VP8']?.framesEncoded ?? 0;
  const encodedAtJoin = encoded();
  const late = await viewer();
  const encodedAtFirstPicture = await until(
    'the late viewer decoded a picture',
    () => late.firstDecodedMs() !== null && encoded(),
    20_000,
    10,
  ).catch(async (error: Error) => {
    const server_ = await (await fetch(late.location)).text();
    throw new Error(`${error.message}; viewer ${JSON.stringify(late.stats())}; server ${server_}`);
  });
  const frames = encodedAtFirstPicture - encodedAtJoin;
  console.log(
    `late viewer: first picture ${(late.firstDecodedMs()! - late.answeredMs).toFixed(0)} ms and ${frames} encoded frames after joining`,
  );
  assert.ok(frames <= MAX_FRAMES_TO_FIRST_PICTURE, `first picture ${frames} encoded frames after joining`);
  assert.ok(late.stats().keyframes >= 1);
});

test('a PLI from one viewer is answered with a keyframe on the shared encoder', { timeout: 20_000 }, async () => {
  const v = viewers[0]!;
  await new Promise((r) => setTimeout(r, 600)); // past the keyframe rate limit of the last join
  const before = v.stats().keyframes;
  v.requestKeyframe();
  await until('a keyframe followed the PLI', () => v.stats().keyframes > before, 2000);
});

test('an H264 viewer gets its own codec: one encoder per codec, freed when its last viewer leaves', { timeout: 20_000 }, async () => {
  const h = await viewer('H264', true);
  await until('the H264 viewer decoded 5 frames', () => h.stats().framesDecoded >= 5, 10_000);
  assert.equal(liveResources().encoders, 2, 'VP8 and H264, one each');
  // The loopback publisher's audio m-line carries no packets; the GStreamer test checks Opus actually arrives.
  assert.match(h.answerSdp, /m=audio [1-9]\d* [^\n]*\r?\n(?:[^m][^\n]*\n)*a=sendonly/, 'audio offered to the viewer (sendonly)');
  const res = await fetch(h.location, { method: 'DELETE' });
  assert.equal(res.status, 200);
  viewers.splice(viewers.indexOf(h), 1);
  await h.close({ deleteResource: false });
  assert.equal((await fetch(h.location)).status, 404, 'the viewer resource is gone');
  await until('the H264 encoder closed', () => liveResources().encoders === 1, 2000);
});

test('a viewer that vanishes without DELETE is dropped after the media timeout', { timeout: 20_000 }, async () => {
  const before = server.sessions.viewerCount;
  const ghost = viewers.pop()!;
  await ghost.close({ deleteResource: false });
  await until('the server dropped the vanished viewer', () => server.sessions.viewerCount === before - 1, MEDIA_TIMEOUT_MS + 5000);
});

test(
  'a browser-like sendrecv publisher gets its restyled video back from the same encoder its viewers share',
  { timeout: 30_000 },
  async () => {
    const encodersBefore = liveResources().encoders;
    let back = 0;
    const browser = await publishLoopedClip(`${server.url}/whip/${STREAM}-browser`, clip, { onOutputFrame: () => back++ });
    const watcher = await startWhepViewer({ whepUrl: `${server.url}/whep/${STREAM}-browser`, codec: 'VP8' });
    try {
      await until('the publisher and its viewer both got restyled frames', () => back >= 5 && watcher.stats().framesDecoded >= 5, 15_000);
      const session = server.sessions.byStreamName(`${STREAM}-browser`)!;
      assert.ok(session.publisher.returnPath, 'sendrecv: the publisher is a consumer too');
      assert.equal(session.egress.stats().codecs.VP8?.consumers, 2);
      assert.equal(liveResources().encoders, encodersBefore + 1, 'one more stream, one more encoder — not two');
    } finally {
      await watcher.close();
      await browser.close();
    }
    assert.equal(liveResources().encoders, encodersBefore);
  },
);

test('when the stream ends, its viewers are freed; then nothing is left', { timeout: 20_000 }, async () => {
  assert.ok(server.sessions.viewerCount >= 1);
  const res = await fetch(publisher.location, { method: 'DELETE' });
  assert.equal(res.status, 200);
  assert.equal(server.sessions.viewerCount, 0);
  assert.equal(liveResources().viewers, 0);
  assert.equal(liveResources().encoders, 0);
  assert.equal(
    (await fetch(`${server.url}/whep/${STREAM}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: 'v=0' })).status,
    404,
  );
  for (const v of viewers.splice(0)) await v.close({ deleteResource: false });
  await publisher.close({ deleteSession: false });
  const left = Object.entries(liveResources()).filter(([, n]) => n !== 0);
  assert.deepEqual(left, [], JSON.stringify(liveResources()));
});
