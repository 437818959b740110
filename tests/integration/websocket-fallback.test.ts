// The WebSocket fallback: JPEG frames in, restyled JPEG frames out, control JSON as text — same engine
// and model as WebRTC sessions; its message cap, per-client session cap and backpressure on a slow reader.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { RunningServer } from '../../server/server.js';
import { correlation, coverResize, downscale, edges, meanAbsDiff } from '../support/image-metrics.js';
import { DEFAULT_MODEL, startTestServer } from '../support/server-harness.js';
import { makeOffer } from '../support/werift-offer.js';
import { until } from '../support/until.js';
import { WebSocketJpegEgress } from '../../stream/websocket-jpeg.js';

let server: RunningServer;
before(async () => {
  server = await startTestServer({ modelDir: DEFAULT_MODEL });
});
after(async () => {
  await server.close();
});

function nextMessage(ws: WebSocket, binary: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message within 5 s')), 5000);
    const onMessage = (data: Buffer, isBinary: boolean): void => {
      if (isBinary !== binary) return;
      clearTimeout(timer);
      ws.off('message', onMessage);
      resolve(data);
    };
    ws.on('message', onMessage);
  });
}

test('JPEG frames come back restyled, control messages are answered, garbage gets an error', async () => {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws`);
  const hello = JSON.parse((await nextMessage(ws, false)).toString()) as { type: string; width: number; height: number };
  assert.equal(hello.type, 'hello');
  const { width, height } = hello;

  const photo = path.join(DEFAULT_MODEL, 'testdata', 'heldout.png');
  const jpeg = await sharp(photo).resize(640, 480, { fit: 'cover' }).jpeg({ quality: 90 }).toBuffer();
  ws.send(jpeg);
  const out = await nextMessage(ws, true);
  const decoded = await sharp(out).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([decoded.info.width, decoded.info.height], [width, height]);
  const output = { width, height, data: new Uint8Array(decoded.data) };
  const src = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  const input = await coverResize({ width: src.info.width, height: src.info.height, data: new Uint8Array(src.data) }, width, height);
  const [a, b] = await Promise.all([downscale(input, width / 4, height / 4), downscale(output, width / 4, height / 4)]);
  assert.ok(correlation(edges(a), edges(b)) > 0.35, 'structure kept');
  assert.ok(meanAbsDiff(input, output) > 8, 'restyled');

  ws.send(JSON.stringify({ type: 'params', params: { steps: 2 } }));
  const ack = JSON.parse((await nextMessage(ws, false)).toString()) as { type: string; params: { steps: number } };
  assert.deepEqual([ack.type, ack.params.steps], ['params', 2]);

  ws.send(JSON.stringify({ type: 'params', params: { steps: 9 } }));
  const refused = JSON.parse((await nextMessage(ws, false)).toString()) as { type: string; message: string };
  assert.equal(refused.type, 'error');
  assert.match(refused.message, /steps must be one of/);

  ws.send(Buffer.from('definitely not a jpeg'));
  const garbage = JSON.parse((await nextMessage(ws, false)).toString()) as { type: string; message: string };
  assert.equal(garbage.type, 'error');
  assert.match(garbage.message, /JPEG/);

  // Still serving after the garbage.
  ws.send(jpeg);
  await nextMessage(ws, true);
  ws.close();
  await new Promise((r) => ws.once('close', r));
});

test('a WebSocket stream is a session: listed at /sessions/<id>, counted against --max-sessions, ended by DELETE', async () => {
  const small = await startTestServer({ modelDir: DEFAULT_MODEL, maxSessions: 1 });
  const wsUrl = `${small.url.replace('http', 'ws')}/ws`;
  try {
    const ws = new WebSocket(wsUrl);
    const hello = JSON.parse((await nextMessage(ws, false)).toString()) as { session: string };
    const listed = await fetch(`${small.url}/sessions/${hello.session}`);
    assert.equal(listed.status, 200);
    assert.equal(((await listed.json()) as { codec: string }).codec, 'jpeg');
    assert.equal(((await (await fetch(`${small.url}/healthz`)).json()) as { sessions: number }).sessions, 1);

    // The one slot is taken: a WHIP publisher and a second socket are refused.
    const peer = await makeOffer();
    const whip = await fetch(`${small.url}/whip`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: peer.offer });
    await peer.close();
    assert.equal(whip.status, 503);
    const second = new WebSocket(wsUrl);
    const refusal = JSON.parse((await nextMessage(second, false)).toString()) as { type: string; message: string };
    assert.deepEqual([refusal.type, /--max-sessions/.test(refusal.message)], ['error', true]);
    const code = await new Promise<number>((resolve) => second.once('close', (c: number) => resolve(c)));
    assert.equal(code, 1013);

    // DELETE ends it like a WHIP session: the socket closes and the slot is free again.
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    assert.equal((await fetch(`${small.url}/sessions/${hello.session}`, { method: 'DELETE' })).status, 200);
    await closed;
    assert.equal(small.sessions.size, 0);
    const third = new WebSocket(wsUrl);
    assert.equal(JSON.parse((await nextMessage(third, false)).toString()).type, 'hello');
    third.close();
  } finally {
    await small.close();
  }
});

test('a message over the 4 MiB cap closes that socket with 1009 and ends its session; the server keeps serving', async () => {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws`);
  const hello = JSON.parse((await nextMessage(ws, false)).toString()) as { session: string };
  const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
  ws.on('error', () => undefined); // the server's close frame may race our send
  ws.send(Buffer.alloc(4 * 1024 * 1024 + 1, 0xff));
  assert.equal(await closed, 1009, 'RFC 6455 "message too big"');
  await until('the session to end', async () => (await fetch(`${server.url}/sessions/${hello.session}`)).status === 404, 5000);
  const next = new WebSocket(`${server.url.replace('http', 'ws')}/ws`);
  assert.equal(JSON.parse((await nextMessage(next, false)).toString()).type, 'hello');
  next.close();
});

test('--max-sessions-per-client caps WebSocket sessions from one address: the next gets the reason and 1013', async () => {
  const capped = await startTestServer({ modelDir: DEFAULT_MODEL, maxSessionsPerClient: 1 });
  const wsUrl = `${capped.url.replace('http', 'ws')}/ws`;
  try {
    const first = new WebSocket(wsUrl);
    assert.equal(JSON.parse((await nextMessage(first, false)).toString()).type, 'hello');
    const second = new WebSocket(wsUrl);
    const refusal = JSON.parse((await nextMessage(second, false)).toString()) as { type: string; message: string };
    assert.equal(refusal.type, 'error');
    assert.match(refusal.message, /--max-sessions-per-client/);
    assert.equal(await new Promise<number>((resolve) => second.once('close', (c: number) => resolve(c))), 1013);
    first.close();
    await until('the first session to end', () => capped.sessions.size === 0, 5000);
  } finally {
    await capped.close();
  }
});

test('backpressure: a client that stops reading gets frames skipped, not queued without bound', async () => {
  // The real egress on a real socket pair; the client pauses reading, so the kernel's buffers fill and then the
  // server-side socket's own buffer (bufferedAmount). Frames of noise compress badly: a few megabytes each.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const accepted = new Promise<WebSocket>((resolve) => wss.once('connection', (ws: WebSocket) => resolve(ws)));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  await new Promise<void>((resolve) => client.once('open', () => resolve()));
  const serverSide = await accepted;
  let received = 0;
  client.on('message', () => received++);
  client.pause();
  const egress = new WebSocketJpegEgress(serverSide, { sent: () => undefined }, { warn: () => undefined });
  const side = 1024;
  const noise = new Uint8Array(side * side * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (Math.imul(i, 2654435761) >>> 24) & 0xff;
  let peakBuffered = 0;
  try {
    for (let i = 0; i < 60 && egress.stats().framesSkipped < 3; i++) {
      const sentBefore = egress.stats().framesSent;
      const skippedBefore = egress.stats().framesSkipped;
      egress.send({ image: { width: side, height: side, data: noise }, rtpTimestamp: i * 3000, arrivalMs: 0, seq: i, stages: [] });
      // Each frame is either skipped at once or JPEG-encoded (sharp's threads) and handed to the socket.
      await until(
        'the frame to be sent or skipped',
        () => egress.stats().framesSent > sentBefore || egress.stats().framesSkipped > skippedBefore,
        10_000,
        5,
      );
      peakBuffered = Math.max(peakBuffered, serverSide.bufferedAmount);
    }
    const { framesSent, framesSkipped } = egress.stats();
    assert.ok(framesSkipped >= 3, `frames skipped once the client fell behind (sent ${framesSent}, skipped ${framesSkipped})`);
    // What is held for the slow client is bounded: the 1 MiB threshold plus the one frame that crossed it.
    const jpegBytes = 3 * 1024 * 1024; // a 1024×1024 noise JPEG at quality 80 is under 3 MiB
    assert.ok(peakBuffered <= 1024 * 1024 + jpegBytes, `peak bufferedAmount ${peakBuffered} bytes`);
    // Reading again, the client gets every frame that was sent, in order and whole.
    client.resume();
    await until(`the client to receive the ${framesSent} frames sent`, () => received === framesSent, 20_000);
  } finally {
    await egress.close();
    client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }
});
