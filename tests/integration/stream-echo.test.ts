// A PublisherSession that echoes every input frame back (no model) must round-trip a real WebRTC stream:
// frames come back with the RTP timestamps they were sent with and the pixels of the sent frame at model size.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import type { RgbImage } from '../../frame/video-frame.js';
import { createPublisherSession, type PublisherSession, type PublisherStats } from '../../stream/publisher-session.js';
import { createEchoPublisher } from '../support/echo-publisher.js';
import { SdpError, UnsupportedCodecError } from '../../stream/errors.js';
import { liveResources } from '../../stream/resource-counters.js';
import type { VideoCodecName } from '../../stream/video-codec.js';
import { createLoopbackClient, loadTestPhoto, makePanClip } from '../../bench/loopback-client.js';
import { until } from '../support/until.js';

const TARGET = { width: 320, height: 256 };
const FPS = 30;
const FRAMES = 90;
/** 3 s of clip at even 3 fps of echo, what a starved 2-core machine still manages (idle: all 90). */
const MIN_ECHOED = 9;

/** Test-only WHIP endpoint: POST /whip answers with an echoing session; DELETE /whip/:id closes it. */
interface EchoServer {
  url: string;
  sessions: Map<string, PublisherSession>;
  closed: string[];
  /** Stage name → durations (ms) of every frame sent back, from the frames' own stage records. */
  stages: Map<string, number[]>;
  stop(): Promise<void>;
}

function startEchoServer(): Promise<EchoServer> {
  const sessions = new Map<string, PublisherSession>();
  const stages = new Map<string, number[]>();
  const closed: string[] = [];
  let next = 1;
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method === 'POST' && req.url === '/whip') {
      const id = String(next++);
      try {
        let session: PublisherSession | undefined;
        session = await createEchoPublisher(Buffer.concat(chunks).toString('utf8'), {
          target: TARGET,
          codecs: ['VP8', 'H264'],
          maxBitrateKbps: 1500,
          network: { announcedAddresses: ['127.0.0.1'] },
          // Also counts from the answer to the first packet, which a loaded machine can delay by seconds.
          mediaTimeoutMs: 5000,
          onData: (text) => session?.sendData(`echo:${text}`),
          onClosed: (reason) => closed.push(reason),
          onSent: (frame, firstPacketMs) => {
            for (const st of frame.stages) stages.set(st.name, [...(stages.get(st.name) ?? []), st.endMs - st.startMs]);
            stages.set('arrival→first packet out', [...(stages.get('arrival→first packet out') ?? []), firstPacketMs - frame.arrivalMs]);
          },
        });
        sessions.set(id, session);
        res.writeHead(201, { 'Content-Type': 'application/sdp', Location: `/whip/${id}` }).end(session.answerSdp);
      } catch (error) {
        const status = (error as { status?: number }).status ?? 500;
        res.writeHead(status, { 'Content-Type': 'text/plain' }).end((error as Error).message);
      }
    } else if (req.method === 'DELETE' && req.url?.startsWith('/whip/')) {
      const id = req.url.slice('/whip/'.length);
      await sessions.get(id)?.close();
      sessions.delete(id);
      res.writeHead(200).end();
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/whip`,
        sessions,
        closed,
        stages,
        stop: async () => {
          for (const s of sessions.values()) await s.close();
          await new Promise((r) => server.close(r));
        },
      });
    }),
  );
}

function psnr(a: RgbImage, b: RgbImage): number {
  assert.equal(a.data.length, b.data.length);
  let se = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = a.data[i]! - b.data[i]!;
    se += d * d;
  }
  const mse = se / a.data.length;
  return mse === 0 ? 99 : 10 * Math.log10((255 * 255) / mse);
}

async function coverResize(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  const data = await sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { fit: 'cover', position: 'centre' })
    .raw()
    .toBuffer();
  return { width, height, data: new Uint8Array(data) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

describe('PublisherSession echo over real WebRTC', { timeout: 120_000 }, () => {
  let server: Awaited<ReturnType<typeof startEchoServer>>;
  let clip: RgbImage[];
  let references: RgbImage[];

  before(async () => {
    server = await startEchoServer();
    clip = await makePanClip(await loadTestPhoto(), 640, 480, FRAMES);
    references = await Promise.all(clip.map((f) => coverResize(f, TARGET.width, TARGET.height)));
  });
  after(async () => {
    await server?.stop();
  });

  for (const codec of ['VP8', 'H264'] as VideoCodecName[]) {
    test(`${codec}: frames come back throughout the clip with their RTP timestamps and the sent pixels`, { timeout: 60_000 }, async () => {
      server.stages.clear();
      const received = new Map<number, { rgb: RgbImage; receivedMs: number }>();
      const dataReplies: string[] = [];
      const client = await createLoopbackClient({
        whipUrl: server.url,
        codec,
        fps: FPS,
        frames: clip,
        width: 640,
        height: 480,
        dataChannel: true,
        onData: (t) => dataReplies.push(t),
        onOutputFrame: (ts, rgb, receivedMs) => received.set(ts, { rgb, receivedMs }),
      });
      await client.finished;
      client.sendData('ping');
      // The egress keeps one frame waiting while it encodes (latest wins), so a loaded machine sends fewer back, but
      // output never stops: a frame of the clip's last second comes back (a few ms idle; 10 s for a loaded machine).
      const fromLastSecond = (): boolean => [...received.keys()].some((ts) => (client.sent.get(ts)?.index ?? -1) >= FRAMES - FPS);
      await until("a frame of the clip's last second to come back", fromLastSecond, 10_000);
      await until('the DataChannel echo', () => dataReplies.length > 0, 10_000);
      const session = [...server.sessions.values()].at(-1)!;
      const stats: PublisherStats = session.stats();
      assert.equal(session.codec, codec);

      const psnrs: number[] = [];
      const latencies: number[] = [];
      let unmatched = 0;
      for (const [ts, out] of received) {
        const sent = client.sent.get(ts);
        if (!sent) {
          unmatched++;
          continue;
        }
        assert.equal(out.rgb.width, TARGET.width);
        assert.equal(out.rgb.height, TARGET.height);
        psnrs.push(psnr(out.rgb, references[sent.index]!));
        latencies.push(out.receivedMs - sent.sentMs);
      }
      await client.close();
      console.log(
        `${codec}: sent ${FRAMES}, back ${received.size}, unmatched ${unmatched}, median PSNR ${median(psnrs).toFixed(1)} dB, ` +
          `min ${Math.min(...psnrs).toFixed(1)} dB, median round trip ${median(latencies).toFixed(1)} ms; session ${JSON.stringify(stats)}`,
      );
      const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)] ?? NaN;
      console.log(
        `${codec} 640x480 → ${TARGET.width}x${TARGET.height} stages (median / p95 ms): ` +
          [...server.stages].map(([k, v]) => `${k} ${median(v).toFixed(2)} / ${p95(v).toFixed(2)}`).join(', '),
      );
      for (const name of ['depacketize', 'decode', 'scale', 'encode', 'packetize'])
        assert.ok(server.stages.has(name), `stage ${name} recorded`);
      assert.equal(unmatched, 0, 'every output frame carries an input RTP timestamp');
      // How many come back is the machine's speed (reported above); that they keep coming is the echo's job.
      assert.ok(received.size >= MIN_ECHOED, `received ${received.size} of ${FRAMES}`);
      assert.ok(median(psnrs) > 25, `median PSNR ${median(psnrs)}`);
      assert.ok(stats.decodeErrors === 0, 'no decode errors on a clean loopback');
      assert.deepEqual(dataReplies, ['echo:ping']);
    });
  }

  test('a PLI from the client is answered with a keyframe on the next frame', { timeout: 30_000 }, async () => {
    const client = await createLoopbackClient({
      whipUrl: server.url,
      codec: 'VP8',
      fps: FPS,
      frames: clip.slice(0, 45),
      width: 640,
      height: 480,
      onOutputFrame: () => {},
    });
    await new Promise((r) => setTimeout(r, 600));
    const before = client.stats().keyframesReceived;
    client.requestKeyframe();
    await client.finished;
    await new Promise((r) => setTimeout(r, 300));
    const session = [...server.sessions.values()].at(-1)!;
    const stats = session.stats();
    const after = client.stats().keyframesReceived;
    await client.close();
    assert.equal(before, 1, 'one keyframe at the start, none since (gop is 10 s)');
    assert.ok(stats.keyframeRequestsReceived >= 1, 'the server saw the PLI');
    assert.ok(after > before, 'a keyframe followed the PLI');
  });

  test('a sendonly (WHIP/OBS) offer is answered recvonly: frames arrive, nothing is sent back', { timeout: 30_000 }, async () => {
    let back = 0;
    const client = await createLoopbackClient({
      whipUrl: server.url,
      codec: 'VP8',
      fps: FPS,
      frames: clip.slice(0, 30),
      width: 640,
      height: 480,
      direction: 'sendonly',
      audio: true,
      onOutputFrame: () => back++,
    });
    await client.finished;
    await new Promise((r) => setTimeout(r, 300));
    const session = [...server.sessions.values()].at(-1)!;
    const stats = session.stats();
    await client.close();
    assert.match(client.answerSdp, /a=recvonly/);
    assert.match(client.answerSdp, /a=group:BUNDLE 0 1/, 'audio stays in the bundle');
    assert.match(client.answerSdp, /m=audio [1-9]/, 'audio m-line accepted, not rejected with port 0');
    assert.ok(stats.framesDecoded >= 27, `decoded ${stats.framesDecoded} of 30`);
    assert.equal(stats.packetsOut, 0);
    assert.equal(back, 0);
  });

  test('a peer that vanishes without DELETE is reported through onClosed', { timeout: 30_000 }, async () => {
    const client = await createLoopbackClient({
      whipUrl: server.url,
      codec: 'VP8',
      fps: FPS,
      frames: clip.slice(0, 15),
      width: 640,
      height: 480,
      onOutputFrame: () => {},
    });
    await client.finished;
    const before = server.closed.length;
    const t0 = Date.now();
    await client.close({ deleteSession: false });
    while (server.closed.length === before && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 100));
    const reason = server.closed.at(-1);
    console.log(`vanished peer reported after ${Date.now() - t0} ms: ${reason}`);
    assert.ok(server.closed.length > before, 'onClosed was called');
    assert.match(reason!, /no media|peer/);
  });

  test('closing a session while frames are in flight is safe', { timeout: 30_000 }, async () => {
    const client = await createLoopbackClient({
      whipUrl: server.url,
      codec: 'H264',
      fps: FPS,
      frames: clip.slice(0, 30),
      width: 640,
      height: 480,
      loop: true,
      onOutputFrame: () => {},
    });
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(client.stats().framesReceived > 0, 'frames were flowing');
    const res = await fetch(client.location, { method: 'DELETE' });
    assert.equal(res.status, 200);
    await new Promise((r) => setTimeout(r, 300)); // the client keeps sending into a closed session
    await client.close({ deleteSession: false });
  });

  test('close() frees every session resource', async () => {
    await server.stop();
    server.sessions.clear();
    const live = liveResources();
    assert.deepEqual(live, { sessions: 0, viewers: 0, peerConnections: 0, decoders: 0, encoders: 0, scalers: 0, timers: 0 });
    server = await startEchoServer();
  });

  test('a malformed offer is an SdpError with status 400', async () => {
    const options = {
      target: TARGET,
      codecs: ['VP8', 'H264'] as VideoCodecName[],
      maxBitrateKbps: 1000,
      onFrame() {},
      onData() {},
      onClosed() {},
    };
    await assert.rejects(createPublisherSession('hello', options), (e: unknown) => e instanceof SdpError && e.status === 400);
    const res = await fetch(server.url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: 'v=0\r\n' });
    assert.equal(res.status, 400);
  });

  test('an offer with only AV1 is an UnsupportedCodecError naming VP8 and H264', async () => {
    const sdp = [
      'v=0',
      'o=- 1 2 IN IP4 127.0.0.1',
      's=-',
      't=0 0',
      'a=group:BUNDLE 0',
      'm=video 9 UDP/TLS/RTP/SAVPF 45',
      'c=IN IP4 0.0.0.0',
      'a=mid:0',
      'a=ice-ufrag:abcd',
      'a=ice-pwd:abcdefghijklmnopqrstuvwx',
      'a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF',
      'a=setup:actpass',
      'a=sendonly',
      'a=rtcp-mux',
      'a=rtpmap:45 AV1/90000',
      '',
    ].join('\r\n');
    const options = {
      target: TARGET,
      codecs: ['VP8', 'H264'] as VideoCodecName[],
      maxBitrateKbps: 1000,
      onFrame() {},
      onData() {},
      onClosed() {},
    };
    await assert.rejects(createPublisherSession(sdp, options), (e: unknown) => {
      assert.ok(e instanceof UnsupportedCodecError);
      assert.equal(e.status, 415);
      assert.match(e.message, /VP8/);
      assert.match(e.message, /H264/);
      assert.match(e.message, /AV1/);
      return true;
    });
    assert.equal(liveResources().sessions, 0);
  });
});
