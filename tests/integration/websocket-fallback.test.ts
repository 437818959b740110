// The WebSocket fallback: JPEG frames in, restyled JPEG frames out, control JSON as text — same engine
// and model as WebRTC sessions.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { WebSocket } from 'ws';
import type { RunningServer } from '../../server/server.js';
import { correlation, coverResize, downscale, edges, meanAbsDiff } from '../support/image-metrics.js';
import { DEFAULT_MODEL, startTestServer } from '../support/server-harness.js';

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
