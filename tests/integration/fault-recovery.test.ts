// Faults inside a live stream, with real components (werift DTLS-SRTP, node-av codecs, the default model in
// worker threads): a model worker crashing, a corrupt keyframe, an encoder failing, DTLS failing, a WHEP viewer
// vanishing. Each test asserts recovery (frames resume) or a clear, clean end (session closed with a reason,
// nothing left live).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createLoopbackClient, loadTestPhoto, makePanClip } from '../../bench/loopback-client.js';
import type { ModelRuntime } from '../../realtime/model-runtime.js';
import type { RgbImage } from '../../frame/video-frame.js';
import type { RunningServer } from '../../server/server.js';
import { liveResources } from '../../stream/resource-counters.js';
import type { EncodedPicture } from '../../stream/video-codec.js';
import { encodePictures, startRawPublisher } from '../support/raw-publisher.js';
import { DEFAULT_MODEL, startTestServer } from '../support/server-harness.js';
import { requireDefaultModel } from '../support/test-dependency.js';
import { makeOffer } from '../support/werift-offer.js';
import { startWhepViewer } from '../../bench/whep-viewer.js';
import { until } from '../support/until.js';
import { CRASH_ON_CUE_WORKER, crashWorkers, encodersFailingOnCue } from '../support/worker-faults.js';

const skip = requireDefaultModel();
// Waits (until(..., ms)) are for events a broken server never produces, so their bounds only decide when to give up:
// each is 10–20× what an idle 2-core machine needs (a first restyled frame ≈ 1 s, a model worker restart ≈ 2 s, a
// vanished peer = the media timeout + one check), so a loaded machine slows these tests without failing them.
// The server's media timeout: short, so vanished peers are found quickly, but it also counts from the answer until a
// publisher's first packet, which ICE + DTLS (werift's, in JavaScript) can delay by seconds on a loaded 2-core
// machine: 5 s.
const MEDIA_TIMEOUT_MS = 5000;
let server: RunningServer;
let clip: RgbImage[];
const encoders = encodersFailingOnCue();

before(async () => {
  if (skip) return;
  server = await startTestServer(
    {
      modelDir: DEFAULT_MODEL,
      mediaTimeoutMs: MEDIA_TIMEOUT_MS,
      maxSessions: 8,
      maxSessionsPerClient: 8,
      admissionCeiling: Number.POSITIVE_INFINITY,
    },
    { inferenceWorker: CRASH_ON_CUE_WORKER, openEncoder: encoders.openEncoder },
  );
  clip = await makePanClip(await loadTestPhoto(path.join(DEFAULT_MODEL, 'testdata', 'heldout.png')), 320, 240, 30);
});
after(async () => {
  await server?.close();
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function publisher(onFrame: () => void, extra: { whipPath?: string } = {}) {
  return createLoopbackClient({
    whipUrl: `${server.url}${extra.whipPath ?? '/whip'}`,
    codec: 'VP8',
    fps: 15,
    frames: clip,
    width: 320,
    height: 240,
    loop: true,
    onOutputFrame: onFrame,
  });
}

/** Every stream resource is free again (sessions, viewers, peer connections, codecs, timers). */
async function assertBaseline(): Promise<void> {
  await until('all sessions to close', () => server.sessions.size === 0 && server.sessions.viewerCount === 0, 15_000);
  await until(
    `resources to return to 0: ${JSON.stringify(liveResources())}`,
    () => Object.values(liveResources()).every((n) => n === 0),
    5000,
  );
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

test(
  'a model worker that crashes mid-stream is restarted and the live session gets restyled frames again',
  { skip, timeout: 60_000 },
  async () => {
    let frames = 0;
    const client = await publisher(() => frames++);
    try {
      await until('restyled frames before the crash', () => frames >= 10, 20_000);
      const runtime = server.restyler as ModelRuntime;
      const modelErrors = await metric('sds_session_errors_total', 'kind="model"');
      crashWorkers();
      // The run it died in is rejected: the engine counts a model error and goes on with the next frame.
      await until('the worker to die', async () => (await metric('sds_session_errors_total', 'kind="model"')) > modelErrors, 10_000);
      const atCrash = frames;
      // The pool notices the exit, respawns the worker (model load + warm-up) and the engine's next frame runs there.
      await until('the worker to be restarted', () => runtime.liveWorkers === 1, 30_000);
      await until(`frames to resume after the crash (${frames - atCrash} so far)`, () => frames >= atCrash + 10, 30_000);
      assert.equal(server.sessions.size, 1, 'the session survived the crash');
      assert.equal(runtime.queueDepth <= 1, true, 'nothing is left hanging in the restarted worker');
    } finally {
      await client.close();
    }
    await assertBaseline();
  },
);

test(
  'a corrupt keyframe makes the server ask for a keyframe (PLI) and it recovers when a good one arrives',
  { skip, timeout: 60_000 },
  async () => {
    // One keyframe, then inter frames: the corrupt copy of the keyframe leaves nothing decodable until a PLI is answered.
    const pictures: EncodedPicture[] = await encodePictures('VP8', clip.slice(0, 20));
    const good = pictures[0]!;
    assert.ok(good.keyframe);
    // Keep the 10-byte VP8 keyframe header's size fields but break its sync code and cut the partitions short.
    const corrupt: EncodedPicture = { keyframe: true, data: Buffer.from(good.data.subarray(0, Math.floor(good.data.length / 3))) };
    corrupt.data[3] = 0x00;
    corrupt.data[4] = 0x00;
    // A sendonly (OBS-like) publisher: the engine's output count says what was restyled.
    const pub = await startRawPublisher({ baseUrl: server.url, codec: 'VP8' });
    try {
      const session = server.sessions.whip(pub.sessionId)!;
      assert.ok(session);
      const restyled = (): number => session.engine.stats().framesOut;
      let ts = 1000;
      // Let the start-of-stream PLI (sent on the first packet) and its rate limit pass first.
      pub.sendPicture(corrupt, (ts += 6000));
      await sleep(500);
      const requestsBefore = pub.keyframeRequests.length;
      pub.sendPicture(corrupt, (ts += 6000));
      for (let i = 1; i < 8; i++) {
        pub.sendPicture(pictures[i]!, (ts += 6000));
        await sleep(66);
      }
      await until('a PLI after the corrupt keyframe', () => pub.keyframeRequests.length > requestsBefore, 3000);
      const stats = session.publisher.stats();
      assert.ok(stats.decodeErrors + stats.framesLost >= 1, `the corrupt keyframe was noticed: ${JSON.stringify(stats)}`);
      assert.equal(restyled(), 0, 'nothing decodable arrived yet');
      // Answer the PLI as an encoder would: a good keyframe, then the inter frames that follow it.
      for (let round = 0; round < 2; round++) {
        for (const picture of pictures) {
          pub.sendPicture(picture, (ts += 6000));
          await sleep(66);
        }
      }
      await until('restyled frames after the good keyframe', () => restyled() >= 10, 15_000);
      assert.ok(session.publisher.stats().framesDecoded >= 10);
    } finally {
      await pub.close();
    }
    await assertBaseline();
  },
);

test('an encode error re-opens the encoder (fresh keyframe) and the stream goes on', { skip, timeout: 60_000 }, async () => {
  let frames = 0;
  const client = await publisher(() => frames++);
  try {
    await until('restyled frames', () => frames >= 10, 20_000);
    const session = server.sessions.whip(server.sessions.all()[0]!.id)!;
    const keyframesBefore = client.stats().keyframesReceived;
    encoders.failNext(1);
    await until('the encoder to be re-opened', () => (session.egress.stats().codecs['VP8']?.encoderReopens ?? 0) >= 1, 5000);
    const atFault = frames;
    await until('frames after the encoder was re-opened', () => frames >= atFault + 10, 15_000);
    const vp8 = session.egress.stats().codecs['VP8']!;
    assert.equal(vp8.encodeErrors, 1);
    assert.equal(vp8.encoderReopens, 1);
    assert.ok(client.stats().keyframesReceived > keyframesBefore, 'the new encoder started with a keyframe');
    assert.equal(server.sessions.size, 1);
    assert.equal(liveResources().encoders, 1, 'the failed encoder was closed when its replacement opened');
  } finally {
    await client.close();
  }
  await assertBaseline();
});

test('an encoder that keeps failing ends the session with a clear reason and frees everything', { skip, timeout: 60_000 }, async () => {
  let frames = 0;
  const client = await publisher(() => frames++);
  try {
    await until('restyled frames', () => frames >= 5, 20_000);
    const before = await metric('sds_session_errors_total', 'kind="encoder"');
    const session = server.sessions.whip(server.sessions.all()[0]!.id)!;
    encoders.failNext(100);
    await until('the session to end', () => server.sessions.size === 0, 10_000);
    assert.equal(session.closed, true);
    assert.equal(await metric('sds_session_errors_total', 'kind="encoder"'), before + 1);
    assert.equal(session.egress.stats().consumers, 0);
  } finally {
    encoders.failNext(0);
    await client.close();
  }
  await assertBaseline();
});

test('DTLS that cannot complete (fingerprint mismatch) ends the session within the media timeout', { skip, timeout: 30_000 }, async () => {
  const peer = await makeOffer({ codecs: ['VP8'] });
  // Another certificate's fingerprint: the server must refuse the peer's real certificate.
  const forged = peer.offer.replace(
    /a=fingerprint:sha-256 [0-9A-F:]+/i,
    `a=fingerprint:sha-256 ${Array.from({ length: 32 }, (_, i) => ((i * 37 + 11) & 0xff).toString(16).padStart(2, '0').toUpperCase()).join(':')}`,
  );
  assert.notEqual(forged, peer.offer);
  try {
    const res = await fetch(`${server.url}/whip`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: forged });
    assert.equal(res.status, 201);
    await peer.pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    // The server gives up on a peer after MEDIA_TIMEOUT_MS of silence; the 8 s on top is slack for a loaded machine
    // (DTLS retransmits and a timer check), far short of "never" (the session would stay forever).
    await until('the session with failed DTLS to be closed', () => server.sessions.size === 0, MEDIA_TIMEOUT_MS + 8000);
    assert.notEqual(peer.pc.connectionState, 'connected', 'no media path was established with a forged fingerprint');
  } finally {
    await peer.close();
  }
  await assertBaseline();
});

test('a peer that never starts ICE/DTLS after the answer is cleaned up within the media timeout', { skip, timeout: 30_000 }, async () => {
  const peer = await makeOffer({ codecs: ['VP8'] });
  try {
    const res = await fetch(`${server.url}/whip`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: peer.offer });
    assert.equal(res.status, 201);
    assert.equal(server.sessions.size, 1);
    // The peer walks away without applying the answer: no ICE checks, no handshake, no media.
    await until('the abandoned session to be closed', () => server.sessions.size === 0, MEDIA_TIMEOUT_MS + 5000);
  } finally {
    await peer.close();
  }
  await assertBaseline();
});

test('a WHEP viewer vanishing mid-stream disturbs neither the publisher nor the other viewer', { skip, timeout: 60_000 }, async () => {
  let frames = 0;
  const client = await publisher(() => frames++, { whipPath: '/whip/fault-fanout' });
  const stay = await startWhepViewer({ whepUrl: `${server.url}/whep/fault-fanout` });
  const vanish = await startWhepViewer({ whepUrl: `${server.url}/whep/fault-fanout` });
  try {
    await until('both viewers decoding', () => stay.stats().framesDecoded >= 5 && vanish.stats().framesDecoded >= 5, 20_000);
    assert.equal(server.sessions.viewerCount, 2);
    const atVanish = { publisher: frames, viewer: stay.stats().framesDecoded };
    // Gone without DELETE and without a DTLS close (werift sends none): only silence tells the server.
    await vanish.close({ deleteResource: false });
    // Sample throughout the detection window: the other viewer and the publisher never stall for long.
    let lastViewerFrames = stay.stats().framesDecoded;
    let lastChangeMs = Date.now();
    let longestStallMs = 0;
    const end = Date.now() + MEDIA_TIMEOUT_MS + 6000;
    while (Date.now() < end && server.sessions.viewerCount > 1) {
      await sleep(100);
      const now = stay.stats().framesDecoded;
      if (now !== lastViewerFrames) {
        lastViewerFrames = now;
        lastChangeMs = Date.now();
      }
      longestStallMs = Math.max(longestStallMs, Date.now() - lastChangeMs);
    }
    assert.equal(server.sessions.viewerCount, 1, 'the vanished viewer was dropped');
    await sleep(1500);
    // A stall is the staying viewer's video stopping until the vanished one is detected (MEDIA_TIMEOUT_MS of
    // silence): so the bound is the media timeout itself. Shorter gaps are a loaded machine, not a disturbance.
    assert.ok(longestStallMs < MEDIA_TIMEOUT_MS, `the staying viewer stalled for ${longestStallMs} ms`);
    assert.ok(
      stay.stats().framesDecoded - atVanish.viewer >= 10,
      `the staying viewer kept decoding (${stay.stats().framesDecoded - atVanish.viewer} frames)`,
    );
    assert.ok(frames - atVanish.publisher >= 10, `the publisher kept getting its restyled video (${frames - atVanish.publisher} frames)`);
    assert.equal(server.sessions.size, 1);
  } finally {
    await stay.close();
    await vanish.close();
    await client.close();
  }
  await assertBaseline();
});
