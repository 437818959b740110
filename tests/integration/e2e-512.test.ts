// The GPU-size path on the CPU: the default model served at --resolution 512x512 with temporal consistency on,
// end to end over WebRTC, so host-side regressions at GPU frame sizes (pre/postprocess, flow and warps at 512²,
// half-resolution upscale) show up in CI without a GPU. It checks that the path works, not how fast: the
// budget is generous so the 2-core machine runs every frame at full resolution, through the consistency path.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createLoopbackClient, loadTestPhoto, makePanClip } from '../../bench/loopback-client.js';
import type { RgbImage } from '../../frame/video-frame.js';
import type { RunningServer } from '../../server/server.js';
import { DEFAULT_MODEL, startTestServer } from '../support/server-harness.js';
import { requireDefaultModel } from '../support/test-dependency.js';

const skip = requireDefaultModel();
const SIZE = 512;
let server: RunningServer;

before(async () => {
  if (skip) return;
  server = await startTestServer({ modelDir: DEFAULT_MODEL, resolution: { width: SIZE, height: SIZE }, budgetMs: 5000 });
});
after(async () => {
  await server?.close();
});

/** How many times the server timed `stage`, from its Prometheus histogram. */
async function stageCount(stage: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`sds_stage_duration_ms_count{stage="${stage}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('a 512×512 stream runs through the model at 512×512 with consistency engaged', { skip }, async () => {
  assert.equal(server.sessions.defaultParams().consistency > 0, true, 'consistency is on by default');
  const clip = await makePanClip(await loadTestPhoto(path.join(DEFAULT_MODEL, 'testdata', 'heldout.png')), SIZE, SIZE, 45);
  const outputs: RgbImage[] = [];
  const client = await createLoopbackClient({
    whipUrl: `${server.url}/whip`,
    codec: 'VP8',
    fps: 30,
    frames: clip,
    width: SIZE,
    height: SIZE,
    onOutputFrame: (_ts, rgb) => outputs.push(rgb),
    // ICE and DTLS on a busy 2-core machine can take longer than the client's default 10 s.
    connectTimeoutMs: 30_000,
  });
  await client.finished;
  // Latest frame wins: on a loaded machine most frames may be replaced, but a stream of them must come back.
  const deadline = Date.now() + 20_000;
  while (outputs.length < 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const stats = JSON.stringify(server.sessions.all().map((s) => s.stats()));
  await client.close();
  assert.ok(outputs.length >= 8, `${outputs.length} frames came back; server: ${stats}`);
  for (const out of outputs) assert.deepEqual([out.width, out.height], [SIZE, SIZE]);
  // 'flow' runs for every full-size frame with consistency on; 'warp' only where a previous output was guided in.
  assert.ok((await stageCount('flow')) >= 2, 'optical flow ran');
  assert.ok((await stageCount('warp')) >= 1, 'the previous output was warped into a later frame');
  const runs = await stageCount('vae_decode');
  assert.ok(runs > 0 && (await stageCount('flow')) >= runs, 'every model run took the consistency path');
});
