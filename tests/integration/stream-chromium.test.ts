// A real browser against PublisherSession (echo, no model): headless Chromium publishes its fake camera over
// WHIP-style signaling with a DataChannel, and must get its video back. Checks what only a browser shows: the
// negotiated codec names, REMB letting Chromium ramp up its frame rate, keyframes for the browser's decoder.
// Skipped where Chromium is absent.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import type { PublisherSession, PublisherStats } from '../../stream/publisher-session.js';
import { createEchoPublisher } from '../support/echo-publisher.js';
import type { VideoCodecName } from '../../stream/video-codec.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM}`;

// page.evaluate callbacks run in the page; this file compiles without the DOM lib.
declare const navigator: any;
declare const RTCPeerConnection: any;
declare const RTCRtpSender: any;

interface EchoServer {
  url: string;
  sessions: PublisherSession[];
  stop(): Promise<void>;
}

function startEchoServer(): Promise<EchoServer> {
  const sessions: PublisherSession[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', 'Content-Type');
    res.setHeader('Access-Control-Expose-Headers', 'Location');
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    // A page on the same loopback origin: a secure context, so getUserMedia exists.
    if (req.method === 'GET') return void res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>publisher</title>');
    if (req.method !== 'POST') return void res.writeHead(404).end();
    try {
      let session: PublisherSession | undefined;
      session = await createEchoPublisher(Buffer.concat(chunks).toString('utf8'), {
        target: { width: 320, height: 256 },
        codecs: ['VP8', 'H264'],
        maxBitrateKbps: 1500,
        network: { announcedAddresses: ['127.0.0.1'] },
        onData: (text) => session?.sendData(`echo:${text}`),
        onClosed: () => {},
      });
      sessions.push(session);
      res.writeHead(201, { 'Content-Type': 'application/sdp', Location: `/whip/${sessions.length}` }).end(session.answerSdp);
    } catch (error) {
      res.writeHead((error as { status?: number }).status ?? 500).end((error as Error).message);
    }
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/whip`,
        sessions,
        stop: async () => {
          for (const s of sessions) await s.close();
          await new Promise((r) => server.close(r));
        },
      });
    }),
  );
}

describe('Chromium publishing to a PublisherSession', { skip, timeout: 120_000 }, () => {
  let server: EchoServer;
  let context: BrowserContext;
  let userDataDir: string;

  before(async () => {
    server = await startEchoServer();
    userDataDir = await mkdtemp(path.join(tmpdir(), 'stream-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--allow-loopback-in-peer-connection',
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream=fps=30',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  });
  after(async () => {
    await context?.close();
    await server?.stop();
    if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
  });

  for (const codec of ['VP8', 'H264'] as VideoCodecName[]) {
    test(`${codec}: the browser's camera comes back restyled (echoed) at a usable frame rate`, { timeout: 60_000 }, async () => {
      const page = await context.newPage();
      await page.goto(server.url.replace(/whip$/, ''));
      const result = await page.evaluate(
        async ({ whipUrl, codec }: { whipUrl: string; codec: string }) => {
          const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 } });
          const pc = new RTCPeerConnection();
          const dc = pc.createDataChannel('control');
          const replies: string[] = [];
          dc.onmessage = (e: any) => replies.push(e.data);
          const tr = pc.addTransceiver(stream.getVideoTracks()[0], { direction: 'sendrecv' });
          const caps = RTCRtpSender.getCapabilities('video').codecs.filter((c: any) => c.mimeType.toUpperCase() === `VIDEO/${codec}`);
          if (caps.length === 0) return { unsupported: true };
          tr.setCodecPreferences(caps);
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise<void>((r) => {
            if (pc.iceGatheringState === 'complete') r();
            pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
          });
          const res = await fetch(whipUrl, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
          const answer = await res.text();
          if (res.status !== 201) return { error: `${res.status} ${answer}` };
          await pc.setRemoteDescription({ type: 'answer', sdp: answer });
          await new Promise((r) => setTimeout(r, 5000));
          if (dc.readyState === 'open') dc.send('ping');
          await new Promise((r) => setTimeout(r, 1000));
          const stats: any[] = [];
          (await pc.getStats()).forEach((s: any) => stats.push(s));
          const inbound = stats.find((s) => s.type === 'inbound-rtp' && s.kind === 'video');
          const outbound = stats.find((s) => s.type === 'outbound-rtp' && s.kind === 'video');
          const codecOf = (id: string) => stats.find((s) => s.id === id)?.mimeType;
          pc.close();
          stream.getTracks().forEach((t: any) => t.stop());
          return {
            replies,
            inFramesDecoded: inbound?.framesDecoded ?? 0,
            inCodec: inbound ? codecOf(inbound.codecId) : undefined,
            outFramesEncoded: outbound?.framesEncoded ?? 0,
            outFps: outbound?.framesPerSecond ?? 0,
            outWidth: outbound?.frameWidth ?? 0,
            outCodec: outbound ? codecOf(outbound.codecId) : undefined,
            pliCount: inbound?.pliCount ?? 0,
          };
        },
        { whipUrl: server.url, codec },
      );
      await page.close();
      if ('unsupported' in result) return void test.skip?.(`this Chromium cannot send ${codec}`);
      const session = server.sessions.at(-1)!;
      const s: PublisherStats = session.stats();
      console.log(`${codec} browser: ${JSON.stringify(result)}\n${codec} server: ${JSON.stringify(s)}`);
      assert.ok(!('error' in result), String((result as { error?: string }).error));
      assert.equal(result.outCodec, `video/${codec}`);
      assert.equal(result.inCodec, `video/${codec}`);
      assert.ok(s.framesDecoded > 60, `server decoded ${s.framesDecoded} browser frames`);
      assert.equal(s.decodeErrors, 0);
      assert.ok(result.inFramesDecoded > 60, `browser decoded ${result.inFramesDecoded} echoed frames`);
      assert.deepEqual(result.replies, ['echo:ping']);
      // REMB lets Chromium leave its 300 kbps start: full resolution at the camera's 30 fps.
      assert.equal(result.outWidth, 640);
      assert.ok(s.inputFps >= 24, `input ${s.inputFps} fps`);
      assert.ok(s.rembSent >= 3, 'REMB sent every second');
    });
  }
});
