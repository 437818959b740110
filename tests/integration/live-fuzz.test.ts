// Bounded, seeded fuzzing INTO live sessions (the HTTP surface is fuzzed in server-fuzz.test.ts): mutated
// VP8/H.264 RTP and RTCP over a real DTLS-SRTP session, raw datagrams without the SRTP keys, random text and
// binary on the DataChannel, random bytes and mutated JPEGs on the WebSocket fallback. Throughout, a healthy
// session on the same server must keep getting restyled frames; afterwards every stream resource is free.
// Seeded by SDS_FUZZ_SEED (replay a failure); SDS_FUZZ_SCALE multiplies the input counts for a longer run.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { WebSocket } from 'ws';
import { createLoopbackClient, loadTestPhoto, makePanClip, type LoopbackClient } from '../../bench/loopback-client.js';
import { mulberry32 } from '../../models/scheduler.js';
import type { RgbImage } from '../../frame/video-frame.js';
import type { RunningServer } from '../../server/server.js';
import { liveResources } from '../../stream/resource-counters.js';
import type { EncodedPicture, VideoCodecName } from '../../stream/video-codec.js';
import { encodePictures, samplePackets, startRawPublisher, type RawPublisher } from '../support/raw-publisher.js';
import { DEFAULT_MODEL, startTestServer } from '../support/server-harness.js';
import { requireDefaultModel } from '../support/test-dependency.js';
import { until } from '../support/until.js';

const skip = requireDefaultModel();
// Waits (until(..., ms)) are for events a broken server never produces, so their bounds only decide when to give up:
// each is 10–20× what an idle 2-core machine needs (a first restyled frame ≈ 1 s, a model worker restart ≈ 2 s, a
// vanished peer = the media timeout + one check), so a loaded machine slows these tests without failing them.
const SEED = Number(process.env.SDS_FUZZ_SEED ?? 0x11fe5eed);
const SCALE = Math.max(0.1, Number(process.env.SDS_FUZZ_SCALE ?? 1));
const n = (base: number): number => Math.max(1, Math.round(base * SCALE));

const rand = mulberry32(SEED);
const int = (k: number): number => Math.floor(rand() * k);
const chance = (p: number): boolean => rand() < p;
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
const bytes = (k: number): Buffer => {
  const b = Buffer.alloc(k);
  for (let i = 0; i < k; i++) b[i] = int(256);
  return b;
};

let server: RunningServer;
let clip: RgbImage[];
let healthy: LoopbackClient;
/** Arrival times (ms) of the healthy session's restyled frames. */
const healthyFrames: number[] = [];
const tried: Record<string, number> = {};
const count = (target: string, k = 1): void => {
  tried[target] = (tried[target] ?? 0) + k;
};

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs `attack` and checks that the healthy session never went `maxGapMs` without a restyled frame meanwhile.
 * The bound is for a stall (output stopping), not for slowing: 5 s is 75 frame intervals at 15 fps, and the
 * attack shares 2 loaded cores with the healthy session, so its frame rate may dip as far as it likes.
 */
async function whileHealthyFlows(what: string, attack: () => Promise<void>, maxGapMs = 5000): Promise<void> {
  const start = Date.now();
  const before = healthyFrames.length;
  await attack();
  await sleep(1000);
  const end = Date.now();
  const during = healthyFrames.filter((t) => t >= start && t <= end);
  const times = [start, ...during, end];
  let gap = 0;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
  assert.ok(
    healthyFrames.length - before >= 5,
    `${what}: the healthy session got only ${healthyFrames.length - before} frames (seed ${SEED})`,
  );
  assert.ok(gap < maxGapMs, `${what}: the healthy session went ${gap} ms without a frame (seed ${SEED})`);
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
}

before(async () => {
  if (skip) return;
  server = await startTestServer({
    modelDir: DEFAULT_MODEL,
    // Also counts from the answer to a publisher's first packet, which a loaded machine can delay by seconds.
    mediaTimeoutMs: 5000,
    maxSessions: 8,
    maxSessionsPerClient: 8,
    admissionCeiling: Number.POSITIVE_INFINITY,
  });
  clip = await makePanClip(await loadTestPhoto(path.join(DEFAULT_MODEL, 'testdata', 'heldout.png')), 320, 240, 30);
  healthy = await createLoopbackClient({
    whipUrl: `${server.url}/whip/healthy`,
    codec: 'VP8',
    fps: 15,
    frames: clip,
    width: 320,
    height: 240,
    loop: true,
    onOutputFrame: () => healthyFrames.push(Date.now()),
  });
  await until('the healthy session to flow', () => healthyFrames.length >= 10, 20_000);
  console.log(`live fuzz seed ${SEED} (replay with SDS_FUZZ_SEED=${SEED}), scale ${SCALE}`);
});

after(async () => {
  await healthy?.close();
  await server?.close();
});

// ---- RTP --------------------------------------------------------------------------------------------------

/** One hostile payload built from a valid packet of `codec`. */
function mutatePayload(codec: VideoCodecName, valid: Buffer): Buffer {
  const p = Buffer.from(valid);
  switch (int(codec === 'H264' ? 9 : 7)) {
    case 0: {
      // bit flips
      for (let i = 0, k = 1 + int(16); i < k && p.length; i++) p[int(p.length)]! ^= 1 << int(8);
      return p;
    }
    case 1:
      return p.subarray(0, int(p.length + 1)); // truncation (down to empty)
    case 2: {
      // bogus descriptor / NAL header in the first bytes, the rest intact
      for (let i = 0; i < Math.min(p.length, 1 + int(6)); i++) p[i] = int(256);
      return p;
    }
    case 3:
      return bytes(int(1400)); // random payload
    case 4:
      return bytes(1400 + int(7000)); // oversized (loopback carries it; a real path would fragment)
    case 5:
      return Buffer.concat([p, bytes(int(600))]); // trailing junk
    case 6: {
      // splice: the head of one packet with the tail of a random buffer
      const cut = int(p.length + 1);
      return Buffer.concat([p.subarray(0, cut), bytes(int(400))]);
    }
    case 7: {
      // H.264 FU-A with garbage FU header (start/end bits, NAL type) and body
      const fu = Buffer.concat([Buffer.from([0x7c, int(256)]), bytes(int(1200))]);
      if (chance(0.3)) fu[1] = 0x80 | 5; // claims the start of an IDR slice
      return fu;
    }
    default: {
      // H.264 STAP-A with lying NAL unit lengths
      const parts: Buffer[] = [Buffer.from([0x78])];
      for (let i = 0, k = 1 + int(5); i < k; i++) {
        const len = chance(0.5) ? int(0x10000) : int(64);
        parts.push(Buffer.from([len >> 8, len & 0xff]), Buffer.from([pick([0x67, 0x68, 0x65, 0x41, int(256)])]), bytes(int(80)));
      }
      return Buffer.concat(parts);
    }
  }
}

async function fuzzRtp(pub: RawPublisher, pictures: EncodedPicture[], inputs: number): Promise<void> {
  let seq = 5000;
  let ts = 900_000;
  // A few valid frames first, so the server knows the stream (and its decoder has state to corrupt).
  for (let i = 0; i < 5; i++) {
    pub.sendPicture(pictures[i % pictures.length]!, (ts += 6000));
    await sleep(30);
  }
  const valid = pictures.flatMap((pic, i) => samplePackets(pub.codec, pic, i * 6000).map((p) => p.payload));
  for (let i = 0; i < inputs; i++) {
    if (chance(0.1)) seq = int(0x10000); // sequence jump
    if (chance(0.1))
      ts = int(0x100000000); // timestamp jump
    else if (chance(0.3)) ts += 6000;
    const payloadType = chance(0.1) ? int(128) : undefined; // wrong payload type
    const ssrc = chance(0.05) ? int(0x100000000) : undefined; // unknown SSRC
    pub.sendRawRtp(
      {
        sequenceNumber: seq++,
        timestamp: ts,
        marker: chance(0.3),
        ...(payloadType === undefined ? {} : { payloadType }),
        ...(ssrc === undefined ? {} : { ssrc }),
      },
      mutatePayload(pub.codec, pick(valid)),
    );
    // Now and then a valid frame in between, so mutations also land on a decoder with good state.
    if (chance(0.03)) pub.sendPicture(pick(pictures), (ts += 6000));
    if (i % 40 === 39) await sleep(25);
  }
  count(`RTP ${pub.codec}`, inputs);
}

function rtcpPacket(): Buffer {
  // V=2, random padding bit and count, a type among SR/RR/SDES/BYE/APP/RTPFB(NACK)/PSFB(PLI, FIR, REMB)/XR or any
  const pt = chance(0.85) ? pick([200, 201, 202, 203, 204, 205, 206, 207]) : int(256);
  const fmt = pt === 205 ? pick([1, 3, 15, int(32)]) : pt === 206 ? pick([1, 4, 15, int(32)]) : int(32);
  let body = bytes(4 * int(12));
  if (pt === 206 && fmt === 15 && chance(0.7)) body = Buffer.concat([bytes(4), Buffer.from('REMB'), bytes(4 * int(6))]);
  // RTCP length: 32-bit words after the header word (two SSRC words + the body) — right, or lying.
  const length = chance(0.7) ? 2 + body.length / 4 : int(0x10000);
  const header = Buffer.from([0x80 | (chance(0.1) ? 0x20 : 0) | fmt, pt, (length >> 8) & 0xff, length & 0xff]);
  return Buffer.concat([header, bytes(chance(0.9) ? 8 : int(8)), body]);
}

async function fuzzRtcp(pub: RawPublisher, inputs: number): Promise<number> {
  let refused = 0;
  for (let i = 0; i < inputs; i++) {
    const parts = Array.from({ length: 1 + int(4) }, rtcpPacket);
    let compound = Buffer.concat(parts);
    if (chance(0.15)) compound = compound.subarray(0, int(compound.length + 1)); // cut mid-packet
    if (!pub.sendRawRtcp(compound)) refused++;
    if (i % 40 === 39) await sleep(25);
  }
  count('RTCP', inputs);
  return refused;
}

async function fuzzDatagrams(pub: RawPublisher, inputs: number): Promise<void> {
  for (let i = 0; i < inputs; i++) {
    const d = bytes(int(1500));
    // Mostly datagrams that look like RTP/RTCP (first byte 128..191, as the demultiplexer checks), some STUN/DTLS-like.
    if (d.length > 0) d[0] = chance(0.8) ? 128 + int(64) : pick([0, 1, 20, 22, 23, int(256)]);
    if (d.length > 1 && chance(0.4)) d[1] = 192 + int(16); // an RTCP packet type
    pub.sendRawDatagram(d);
    if (i % 40 === 39) await sleep(25);
  }
  count('raw datagrams (no SRTP keys)', inputs);
}

for (const codec of ['VP8', 'H264'] as const) {
  test(
    `(a) mutated ${codec} RTP and random RTCP over DTLS-SRTP, and unencrypted datagrams: no crash, the healthy session flows`,
    { skip, timeout: 120_000 },
    async () => {
      const pictures = await encodePictures(codec, clip.slice(0, 6), 3);
      const pub = await startRawPublisher({ baseUrl: server.url, codec });
      try {
        await whileHealthyFlows(`${codec} RTP`, () => fuzzRtp(pub, pictures, n(700)));
        // Good media meanwhile keeps the session inside --media-timeout-ms while RTCP and raw bytes are thrown at it.
        let keepTs = 20_000_000;
        const alive = setInterval(() => pub.sendPicture(pictures[0]!, (keepTs += 18_000)), 250);
        let refused = 0;
        try {
          await whileHealthyFlows(`${codec} RTCP`, async () => {
            refused = await fuzzRtcp(pub, n(codec === 'VP8' ? 300 : 150));
          });
          if (codec === 'VP8') await whileHealthyFlows('raw datagrams', () => fuzzDatagrams(pub, n(300)));
        } finally {
          clearInterval(alive);
        }
        // The attacked session is still there and still takes good media: its decoder recovers on a keyframe.
        const session = server.sessions.whip(pub.sessionId);
        assert.ok(session, 'the fuzzed session was not torn down by garbage');
        const stats = session.publisher.stats();
        const decodedBefore = stats.framesDecoded;
        let ts = 50_000_000;
        for (let round = 0; round < 2; round++) {
          for (const picture of pictures) {
            pub.sendPicture(picture, (ts += 6000));
            await sleep(40);
          }
        }
        await until(
          `${codec} session to decode good frames again: ${JSON.stringify(session.publisher.stats())}`,
          () => session.publisher.stats().framesDecoded >= decodedBefore + 3,
          5000,
        );
        console.log(
          `${codec}: RTP ${tried[`RTP ${codec}`]} inputs (malformed ${stats.malformedPackets}, decode errors ${stats.decodeErrors}, frames lost ${stats.framesLost}, keyframe requests ${stats.keyframeRequestsSent}); RTCP ${n(codec === 'VP8' ? 300 : 150)} compounds (${refused} refused by SRTCP)`,
        );
      } finally {
        await pub.close();
      }
    },
  );
}

// ---- DataChannel ------------------------------------------------------------------------------------------

function randomJson(depth = 0): unknown {
  switch (int(depth > 2 ? 6 : 8)) {
    case 0:
      return null;
    case 1:
      return chance(0.5);
    case 2:
      return pick([0, -1, 1e308, -1e-308, 4, 0.5, Number.MAX_SAFE_INTEGER, int(1000) - 500]);
    case 3:
      return pick(['', 'sketch', 'cartoon', '\u0000', '💥', 'x'.repeat(int(3000)), '__proto__', 'constructor']);
    case 4:
    case 5:
      return pick(['params', 'stats', 'hello', 'error', '']);
    case 6:
      return Array.from({ length: int(5) }, () => randomJson(depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = 0, k = int(6); i < k; i++) {
        o[pick(['type', 'params', 'style', 'strength', 'steps', 'seed', 'consistency', 'similarityFilter', 'prompt', '__proto__', 'x'])] =
          randomJson(depth + 1);
      }
      return o;
    }
  }
}

/**
 * Never empty: werift's sender (our test peer, not the server) sends an empty message as zero SCTP chunks yet
 * uses up a stream sequence number, so the receiver waits for it forever and the channel stalls. A browser
 * sends "" as one byte with PPID 56 (WebRTC String Empty), which the server's werift reads as "".
 */
function controlMessage(): string | Buffer {
  const m = anyControlMessage();
  return m.length === 0 ? ' ' : m;
}

function anyControlMessage(): string | Buffer {
  switch (int(6)) {
    case 0:
      return JSON.stringify({ type: 'params', params: randomJson(1) });
    case 1:
      return JSON.stringify(randomJson());
    case 2:
      return bytes(1 + int(200)).toString('latin1'); // not JSON
    case 3: {
      const valid = JSON.stringify({ type: 'params', params: { strength: rand(), steps: 1 + int(4) } });
      return valid.slice(0, int(valid.length)) + (chance(0.5) ? '}' : ''); // truncated JSON
    }
    case 4:
      return bytes(1 + int(300)); // binary message
    default:
      return JSON.stringify({
        type: 'params',
        params: { style: pick(['sketch', 'cartoon', 'nope']), steps: pick([0, 1, 2, 5, -1, 1.5]), strength: pick([0, 0.5, 1, 2, -0.1]) },
      });
  }
}

test(
  '(b) random JSON, non-JSON and binary on the DataChannel: every message gets a params or error reply',
  { skip, timeout: 120_000 },
  async () => {
    const pub = await startRawPublisher({ baseUrl: server.url, codec: 'VP8' });
    // Media keeps the session alive (--media-timeout-ms) while werift's SCTP works through a long burst.
    const keyframe = (await encodePictures('VP8', clip.slice(0, 1)))[0]!;
    let ts = 0;
    const alive = setInterval(() => pub.sendPicture(keyframe, (ts += 18_000)), 200);
    const replies: Array<{ type?: unknown }> = [];
    let unparsable = 0;
    pub.dataChannel.onMessage.subscribe((m) => {
      try {
        const reply = JSON.parse(typeof m === 'string' ? m : m.toString('utf8')) as { type?: unknown };
        if (reply.type !== 'stats') replies.push(reply);
      } catch {
        unparsable++;
      }
    });
    try {
      await until('the DataChannel to open', () => pub.dataChannel.readyState === 'open', 10_000);
      const inputs = n(400);
      await whileHealthyFlows('DataChannel', async () => {
        for (let i = 0; i < inputs; i++) {
          pub.dataChannel.send(controlMessage());
          if (i % 25 === 24) await sleep(20);
        }
        await until(`replies (${replies.length} of ${inputs})`, () => replies.length >= inputs, 15_000 * SCALE);
      });
      count('DataChannel', inputs);
      assert.equal(unparsable, 0, 'every reply is JSON');
      assert.equal(replies.length, inputs, 'one reply per message');
      const kinds = { params: 0, error: 0 };
      for (const r of replies) {
        assert.ok(r.type === 'params' || r.type === 'error', `reply type ${String(r.type)}`);
        kinds[r.type as 'params' | 'error']++;
        if (r.type === 'error') assert.match(String((r as { message?: unknown }).message), /\w+/);
      }
      assert.ok(kinds.error > 0 && kinds.params > 0, `both outcomes seen: ${JSON.stringify(kinds)}`);
      console.log(`DataChannel: ${inputs} messages → ${kinds.params} params replies, ${kinds.error} error replies`);
      assert.ok(server.sessions.get(pub.sessionId), 'the session is still live');
    } finally {
      clearInterval(alive);
      await pub.close();
    }
  },
);

// ---- WebSocket fallback -----------------------------------------------------------------------------------

function mutateJpeg(jpeg: Buffer): Buffer {
  const j = Buffer.from(jpeg);
  switch (int(6)) {
    case 0:
      for (let i = 0, k = 1 + int(30); i < k; i++) j[int(j.length)] = int(256);
      return j;
    case 1:
      return j.subarray(0, int(j.length)); // truncated
    case 2: {
      // a start-of-frame with absurd dimensions (decompression bomb): SOF0 height/width at +5/+7 after FFC0
      const sof = j.indexOf(Buffer.from([0xff, 0xc0]));
      if (sof >= 0) {
        j.writeUInt16BE(pick([0, 1, 20000, 0xffff, int(0x10000)]), sof + 5);
        j.writeUInt16BE(pick([0, 1, 20000, 0xffff, int(0x10000)]), sof + 7);
      }
      return j;
    }
    case 3:
      return Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), bytes(int(4000))]); // JPEG magic, then garbage
    case 4: {
      // a marker segment with a lying length
      const at = 2 + int(Math.max(1, j.length - 6));
      j[at] = 0xff;
      j[at + 1] = pick([0xc4, 0xdb, 0xda, 0xe0, 0xfe, int(256)]);
      j.writeUInt16BE(int(0x10000), at + 2);
      return j;
    }
    default:
      return bytes(int(3000));
  }
}

test(
  '(c) random bytes and mutated JPEGs on the WebSocket fallback: clear errors, the socket keeps working',
  { skip, timeout: 120_000 },
  async () => {
    const frame = clip[0]!;
    const jpeg = await sharp(Buffer.from(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength), {
      raw: { width: frame.width, height: frame.height, channels: 3 },
    })
      .jpeg({ quality: 70 })
      .toBuffer();
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws`);
    const texts: Array<{ type?: unknown; message?: unknown }> = [];
    let binaries = 0;
    let closed = false;
    ws.on('message', (data, isBinary) => {
      if (isBinary) binaries++;
      else texts.push(JSON.parse(data.toString()) as { type?: unknown });
    });
    ws.on('close', () => (closed = true));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    try {
      const inputs = n(200);
      let slowest = 0;
      let unanswered = 0;
      await whileHealthyFlows('WebSocket', async () => {
        for (let i = 0; i < inputs; i++) {
          const t0 = Date.now();
          const before = texts.length + binaries;
          if (chance(0.1))
            ws.send(bytes(int(300)).toString('latin1')); // text that is not JSON
          else ws.send(chance(0.8) ? mutateJpeg(jpeg) : bytes(int(5000)));
          // One at a time: each input gets its answer (an error, or a frame for a mutation that still decodes —
          // though the deadline scheduler may drop a decodable frame, so silence is counted, not fatal).
          while (texts.length + binaries === before && !closed && Date.now() - t0 < 3000) await sleep(10);
          if (texts.length + binaries === before) unanswered++;
          else slowest = Math.max(slowest, Date.now() - t0);
        }
      });
      count('WebSocket', inputs);
      assert.equal(closed, false, 'the server kept the socket open');
      assert.ok(unanswered <= inputs / 10, `${unanswered} of ${inputs} inputs got no answer`);
      const errors = texts.filter((t) => t.type === 'error');
      assert.ok(errors.length > inputs / 4, `undecodable input is answered with errors (${errors.length})`);
      for (const e of errors) assert.match(String(e.message), /JPEG|JSON|restyle|message/);
      // Good frames still come back restyled after all that (a few: the deadline scheduler may drop one).
      const framesBefore = binaries;
      for (let i = 0; i < 20 && binaries === framesBefore; i++) {
        ws.send(jpeg);
        await sleep(500);
      }
      await until(`a restyled frame for a good JPEG; last answers ${JSON.stringify(texts.slice(-3))}`, () => binaries > framesBefore, 5000);
      console.log(
        `WebSocket: ${inputs} inputs → ${errors.length} errors, ${binaries} frames, ${unanswered} unanswered; slowest answer ${slowest} ms`,
      );
      // How long the answers took is reported, not judged (a loaded machine promises no delay); each input gets 3 s
      // before it counts as unanswered, and the count of unanswered ones is judged above.
    } finally {
      ws.close();
    }
  },
);

test(
  '(d) afterwards: no crash, the healthy session is still restyling, and every fuzzed resource is freed',
  { skip, timeout: 60_000 },
  async () => {
    const before = healthyFrames.length;
    await until('healthy frames after the fuzzing', () => healthyFrames.length >= before + 5, 5000);
    await until('only the healthy session to remain', () => server.sessions.size === 1, 15_000);
    await healthy.close();
    await until('the healthy session to close', () => server.sessions.size === 0, 10_000);
    await until(
      `resources back to 0: ${JSON.stringify(liveResources())}`,
      () => Object.values(liveResources()).every((v) => v === 0),
      5000,
    );
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    console.log(`live fuzz inputs per target (seed ${SEED}): ${JSON.stringify(tried)}; crashes 0; leaks 0`);
  },
);
