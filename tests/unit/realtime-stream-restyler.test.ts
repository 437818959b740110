// A stream's restyler driven directly, on this thread, with the embedded default model: the per-stream
// state (fixed noise, latent cache) that the inference worker keeps for each stream.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { RgbImage } from '../../frame/video-frame.js';
import { LoadedModel } from '../../models/loaded-model.js';
import { StreamRestyler, type StreamFrameRequest } from '../../realtime/stream-restyler.js';

const DEFAULT_MODEL = fileURLToPath(new URL('../../../models/default', import.meta.url));
const quiet = { info: () => {}, warn: () => {} };
const model = LoadedModel.load(DEFAULT_MODEL, { provider: 'cpu', fallbackToCpu: true, intraOpThreads: 1, logger: quiet });

function frame(shift: number): RgbImage {
  const width = 320;
  const height = 256;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0, i = 0; y < height; y++)
    for (let x = 0; x < width; x++, i += 3) data[i] = data[i + 1] = data[i + 2] = (((x + shift) >> 3) * 37 + (y >> 3) * 11) & 0xff;
  return { width, height, data };
}

const request = (image: RgbImage, over: Partial<StreamFrameRequest> = {}): StreamFrameRequest => ({
  image,
  style: 'sketch',
  prompt: [{ prompt: '', weight: 1 }],
  strength: 0.3,
  steps: 1,
  seed: 7,
  consistency: 0,
  scale: 1,
  ...over,
});

test('at consistency 0 a stream restyles each frame on its own: the same frame gives the same pixels, on this stream or a fresh one', async () => {
  const m = await model;
  const a = new StreamRestyler(m);
  const first = await a.restyle(request(frame(0)));
  await a.restyle(request(frame(4)));
  const again = await a.restyle(request(frame(0)));
  const fresh = await new StreamRestyler(m).restyle(request(frame(0)));
  assert.deepEqual([first.image.width, first.image.height], [320, 256]);
  assert.deepEqual(again.image.data, first.image.data);
  assert.deepEqual(fresh.image.data, first.image.data);
  assert.ok(!first.stages.some((s) => s.name === 'flow' || s.name === 'warp'), 'no flow work at consistency 0');
});

test('at consistency 1 the next frame is guided by the cached previous one (flow and warp stages, different pixels)', async () => {
  const m = await model;
  const guided = new StreamRestyler(m);
  await guided.restyle(request(frame(0), { consistency: 1 }));
  const second = await guided.restyle(request(frame(2), { consistency: 1 }));
  const names = second.stages.map((s) => s.name);
  assert.ok(names.includes('flow') && names.includes('warp'), names.join(','));
  const independent = await new StreamRestyler(m).restyle(request(frame(2)));
  assert.notDeepEqual(second.image.data, independent.image.data);
});

test('a new seed is new noise and an empty cache: the first frame after it matches a fresh stream with that seed', async () => {
  const m = await model;
  const s = new StreamRestyler(m);
  await s.restyle(request(frame(0), { consistency: 1 }));
  const after = await s.restyle(request(frame(2), { consistency: 1, seed: 8 }));
  const fresh = await new StreamRestyler(m).restyle(request(frame(2), { consistency: 1, seed: 8 }));
  assert.deepEqual(after.image.data, fresh.image.data);
  const oldSeed = await new StreamRestyler(m).restyle(request(frame(2), { consistency: 1 }));
  assert.notDeepEqual(fresh.image.data, oldSeed.image.data);
});

test('half scale runs the model on a half-size frame and returns the full size', async () => {
  const s = new StreamRestyler(await model);
  const out = await s.restyle(request(frame(0), { scale: 0.5 }));
  assert.deepEqual([out.image.width, out.image.height, out.image.data.length], [320, 256, 320 * 256 * 3]);
  // The VAE converts pixels in its graphs: preprocess and postprocess are the halving and the upscale alone.
  assert.deepEqual(
    out.stages.filter((st) => st.name === 'preprocess' || st.name === 'postprocess').map((st) => st.name),
    ['preprocess', 'postprocess'],
  );
});

test('with the image blend in a graph (--image-blend graph) consistency gives what the host loop gives, inside the frame', async () => {
  const onGraph = await LoadedModel.load(DEFAULT_MODEL, {
    provider: 'cpu',
    fallbackToCpu: true,
    intraOpThreads: 1,
    logger: quiet,
    imageBlend: 'graph',
  });
  assert.ok(onGraph.imageBlend && !(await model).imageBlend, 'auto keeps the host loop on the CPU');
  const graph = new StreamRestyler(onGraph);
  const host = new StreamRestyler(await model);
  const outs: RgbImage[][] = [[], []];
  for (const shift of [0, 4, 8]) {
    const [g, h] = [
      await graph.restyle(request(frame(shift), { consistency: 1 })),
      await host.restyle(request(frame(shift), { consistency: 1 })),
    ];
    outs[0]!.push(g.image);
    outs[1]!.push(h.image);
    if (shift > 0)
      assert.ok(
        g.stages.some((s) => s.name === 'warp'),
        'the previous output was blended in',
      );
  }
  // Away from a 16-pixel border the two differ by rounding only.
  const [a, b] = [outs[0]![2]!, outs[1]![2]!];
  let worst = 0;
  for (let y = 16; y < a.height - 16; y++)
    for (let x = 16; x < a.width - 16; x++)
      for (let c = 0; c < 3; c++)
        worst = Math.max(worst, Math.abs(a.data[(y * a.width + x) * 3 + c]! - b.data[(y * a.width + x) * 3 + c]!));
  assert.ok(worst <= 2, `inside the frame the outputs differ by up to ${worst}`);
});
