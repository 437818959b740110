// Temporal consistency end to end through the model runtime (the default model, real ONNX sessions
// in a worker): consistency 0 reproduces independent per-frame restyles bit for bit; consistency 1
// follows the flow and calms a static noisy scene; plus the latent cache's own contract.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelRuntime } from '../../realtime/model-runtime.js';
import type { RgbImage } from '../../frame/video-frame.js';
import { blendWarpedImage, LatentCache, LATENT_GUIDANCE_WEIGHT } from '../../realtime/latent-cache.js';
import { loadPhoto } from '../../bench/loopback-client.js';
import { makeMotionClip } from '../../bench/motion-clips.js';
import { meanFrameChange } from '../../bench/temporal-metrics.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEFAULT_MODEL = join(ROOT, 'models/default');

async function restyleClip(rt: ModelRuntime, frames: RgbImage[], streamId: string, consistency: number | number[]): Promise<RgbImage[]> {
  const out: RgbImage[] = [];
  for (const [t, frame] of frames.entries()) {
    const c = Array.isArray(consistency) ? consistency[t]! : consistency;
    const r = await rt.restyle({
      streamId,
      image: { ...frame, data: frame.data.slice() },
      style: 'sketch',
      prompt: '',
      strength: 0.1,
      steps: 1,
      seed: 42,
      consistency: c,
    });
    out.push(r.image);
  }
  return out;
}

test('consistency 0 reproduces the independent per-frame output bit for bit, also after consistency was on', async () => {
  const photo = await loadPhoto(join(DEFAULT_MODEL, 'testdata/heldout.png'));
  const clip = makeMotionClip(photo, undefined, { kind: 'occluder', width: 320, height: 256, frames: 5 });
  const rt = await ModelRuntime.load({ modelDir: DEFAULT_MODEL, workers: 1 });
  try {
    // Independent: every frame on a fresh stream.
    const independent: RgbImage[] = [];
    for (const [t, frame] of clip.frames.entries()) independent.push(...(await restyleClip(rt, [frame], `solo-${t}`, 0)));
    const stream0 = await restyleClip(rt, clip.frames, 'c0', 0);
    const mixed = await restyleClip(rt, clip.frames, 'mixed', [1, 1, 0, 1, 0]);
    const guided = await restyleClip(rt, clip.frames, 'c1', 1);
    for (let t = 0; t < clip.frames.length; t++) assert.deepEqual(stream0[t]!.data, independent[t]!.data, `frame ${t} at consistency 0`);
    assert.deepEqual(mixed[2]!.data, independent[2]!.data, 'consistency 0 after 1');
    assert.deepEqual(mixed[4]!.data, independent[4]!.data);
    // The first frame has nothing to follow; later guided frames differ from independent ones.
    assert.deepEqual(guided[0]!.data, independent[0]!.data);
    assert.notDeepEqual(guided[3]!.data, independent[3]!.data);
  } finally {
    await rt.close();
  }
});

test('consistency 1 calms a static scene with camera noise', async () => {
  const photo = await loadPhoto(join(DEFAULT_MODEL, 'testdata/heldout.png'));
  const clip = makeMotionClip(photo, undefined, { kind: 'static-noise', width: 320, height: 256, frames: 8, noiseSigma: 6 });
  const rt = await ModelRuntime.load({ modelDir: DEFAULT_MODEL, workers: 1 });
  try {
    const free = meanFrameChange((await restyleClip(rt, clip.frames, 'free', 0)).slice(2));
    const calm = meanFrameChange((await restyleClip(rt, clip.frames, 'calm', 1)).slice(2));
    assert.ok(calm < 0.5 * free, `output change ${calm.toFixed(3)} with consistency vs ${free.toFixed(3)} without`);
  } finally {
    await rt.close();
  }
});

test('the latent cache guides nothing without a previous frame, at consistency 0, or at another size', () => {
  const cache = new LatentCache(4);
  const img = (w: number, h: number, v: number): RgbImage => ({
    width: w,
    height: h,
    data: new Uint8Array(w * h * 3).map((_, i) => (i * 7 + v) & 0xff),
  });
  const gray = cache.flowFrame(img(64, 32, 0), []);
  const dims = [1, 4, 4, 8];
  const latent = new Float32Array(4 * 4 * 8).map((_, i) => Math.sin(i));
  assert.equal(cache.guide(gray, dims, 1, []), undefined, 'no previous frame');
  cache.commit(gray, latent, dims);
  assert.equal(cache.guide(gray, dims, 0, []), undefined, 'consistency 0');
  assert.equal(cache.guide(gray, [1, 4, 8, 8], 1, []), undefined, 'latent of another size');
  const stages: { name: string }[] = [];
  const g = cache.guide(gray, dims, 1, stages as never)!;
  // The same frame again: zero flow, everything valid, the warped latent is the previous one.
  assert.ok(g.validFraction > 0.99);
  for (let i = 0; i < latent.length; i++) assert.ok(Math.abs(g.warped[i]! - latent[i]!) < 1e-4);
  assert.ok(Math.abs(g.weight[0]! - LATENT_GUIDANCE_WEIGHT) < 1e-6);
  assert.deepEqual(
    stages.map((s) => s.name),
    ['flow', 'warp'],
  );
  // Half the consistency, half the weight.
  assert.ok(Math.abs(cache.guide(gray, dims, 0.5, [])!.weight[5]! - LATENT_GUIDANCE_WEIGHT / 2) < 1e-6);
});

test('blending a warped previous image follows the flow, the mask and the weight', () => {
  const w = 16;
  const h = 8;
  const prev: RgbImage = { width: w, height: h, data: new Uint8Array(w * h * 3).map((_, i) => (Math.floor(i / 3) % w) * 10) };
  const flow = { width: 4, height: 2, data: new Float32Array(4 * 2 * 2) };
  for (let g = 0; g < 8; g++) flow.data[2 * g] = 0.25; // one grid px = 4 image px: a 1-pixel shift
  const mask = new Float32Array(8).fill(1);
  mask[0] = 0;
  const cur: RgbImage = { width: w, height: h, data: new Uint8Array(w * h * 3) };
  blendWarpedImage(cur, prev, flow, mask, 1);
  // Masked-out block untouched; elsewhere out(x) = prev(x + 1) = 10·(x + 1).
  assert.equal(cur.data[0], 0);
  assert.equal(cur.data[3 * 5], 60);
  assert.equal(cur.data[3 * (3 * w + 9) + 1], 100);
  const half: RgbImage = { width: w, height: h, data: new Uint8Array(w * h * 3).fill(100) };
  blendWarpedImage(half, prev, flow, mask, 0.5);
  assert.equal(half.data[3 * 5], 80); // 100 + 0.5·(60 − 100)
});

/** A clip of `n` frames of a textured image moving one pixel right per frame, w × h. */
function movingFrames(w: number, h: number, n: number): RgbImage[] {
  return Array.from({ length: n }, (_, t) => ({
    width: w,
    height: h,
    data: new Uint8Array(w * h * 3).map((_, i) => {
      const p = Math.floor(i / 3);
      const x = (p % w) - t;
      const y = Math.floor(p / w);
      return Math.round(128 + 60 * Math.sin(x * 0.3) * Math.cos(y * 0.23) + (i % 3) * 20);
    }),
  }));
}

/** One frame through the cache as the inference worker runs it; the blended output and the guidance. */
function step(cache: LatentCache, frame: RgbImage, dims: number[], consistency = 1) {
  const out: RgbImage = { ...frame, data: frame.data.slice() };
  const gray = cache.flowFrame(out, []);
  const latent = new Float32Array(dims.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i * 0.1));
  const guidance = cache.guide(gray, dims, consistency, []);
  cache.blendImage(out, guidance, []);
  cache.commit(gray, latent, dims, out);
  return { gray, guidance, out };
}

/** Every buffer of the workspace, by name. */
function workspaceBuffers(cache: LatentCache): Map<string, ArrayBufferView> {
  const ws = cache.workspace!;
  const buffers = new Map<string, ArrayBufferView>([
    ['backward', ws.backward.data],
    ['forward', ws.forward.data],
    ['mask', ws.mask],
    ['latentFlow', ws.latentFlow.data],
    ['valid', ws.valid],
    ['warped', ws.warped],
    ['weight', ws.weight],
    ['image', ws.image!.data],
  ]);
  ws.slots.forEach((slot, s) => {
    buffers.set(`slot${s}.gray`, slot.gray.data);
    slot.frame!.levels.forEach((level, k) => buffers.set(`slot${s}.level${k}`, level.data));
    slot.frame!.gx.forEach((g, k) => buffers.set(`slot${s}.gx${k}`, g));
    slot.frame!.gy.forEach((g, k) => buffers.set(`slot${s}.gy${k}`, g));
  });
  return buffers;
}

test('a stream reuses its workspace: frames of one size write into the same buffers', () => {
  const cache = new LatentCache(4);
  const dims = [1, 4, 4, 8];
  const frames = movingFrames(64, 32, 6);
  const first = step(cache, frames[0]!, dims);
  const second = step(cache, frames[1]!, dims);
  const buffers = workspaceBuffers(cache);
  for (let t = 2; t < frames.length; t++) {
    const { gray, guidance } = step(cache, frames[t]!, dims);
    // The grey frames take turns in two slots: this frame's and the previous one's.
    assert.equal(gray, t % 2 === 0 ? first.gray : second.gray);
    assert.equal(guidance!.warped, second.guidance!.warped);
    assert.equal(guidance!.weight, second.guidance!.weight);
    assert.equal(guidance!.gridFlow, second.guidance!.gridFlow);
    assert.equal(guidance!.gridMask, second.guidance!.gridMask);
    for (const [name, buffer] of workspaceBuffers(cache)) assert.equal(buffer, buffers.get(name), `${name} at frame ${t}`);
  }
});

test('a running stream allocates no typed-array memory per frame', () => {
  const cache = new LatentCache(4);
  const dims = [1, 4, 4, 8];
  const frames = movingFrames(64, 32, 6).map((f) => ({ ...f, data: f.data.slice() }));
  const latent = new Float32Array(4 * 4 * 8);
  const run = (frame: RgbImage): void => {
    const gray = cache.flowFrame(frame, []);
    cache.blendImage(frame, cache.guide(gray, dims, 1, []), []);
    cache.commit(gray, latent, dims, frame);
  };
  run(frames[0]!);
  run(frames[1]!);
  // Every typed-array constructor, counting the calls that allocate (a view on an existing buffer does not).
  const kinds = [
    'Float32Array',
    'Float64Array',
    'Int32Array',
    'Int16Array',
    'Uint8Array',
    'Uint8ClampedArray',
    'Uint16Array',
    'Uint32Array',
  ] as const;
  const saved = kinds.map((k) => globalThis[k]);
  let allocated = 0;
  try {
    for (const [i, k] of kinds.entries()) {
      (globalThis as Record<string, unknown>)[k] = new Proxy(saved[i]!, {
        construct(target, args, newTarget) {
          if (!(args[0] instanceof ArrayBuffer)) allocated++;
          return Reflect.construct(target, args, newTarget);
        },
      });
    }
    assert.equal(new Float32Array(1).length, 1); // the count works
    assert.equal(allocated, 1);
    allocated = 0;
    for (let t = 2; t < frames.length; t++) run(frames[t]!);
  } finally {
    kinds.forEach((k, i) => ((globalThis as Record<string, unknown>)[k] = saved[i]));
  }
  assert.equal(allocated, 0);
});

test('a size change reallocates the workspace, and the guidance is what a fresh stream computes', () => {
  const small = movingFrames(64, 32, 3);
  const large = movingFrames(128, 64, 3);
  const cache = new LatentCache(4);
  step(cache, small[0]!, [1, 4, 4, 8]);
  step(cache, small[1]!, [1, 4, 4, 8]);
  const before = workspaceBuffers(cache);
  // The first frame of the new size has nothing of its size to follow.
  assert.equal(step(cache, large[0]!, [1, 4, 8, 16]).guidance, undefined);
  const { guidance, out } = step(cache, large[1]!, [1, 4, 8, 16]);
  const after = workspaceBuffers(cache);
  for (const [name, buffer] of after) assert.notEqual(buffer, before.get(name), `${name} reallocated`);
  const ws = cache.workspace!;
  assert.equal(ws.mask.length, 32 * 16);
  assert.equal(ws.backward.data.length, 2 * 32 * 16);
  assert.equal(ws.warped.length, 4 * 8 * 16);
  assert.equal(ws.weight.length, 8 * 16);
  assert.equal(ws.image!.data.length, 128 * 64 * 3);

  const fresh = new LatentCache(4);
  step(fresh, large[0]!, [1, 4, 8, 16]);
  const expected = step(fresh, large[1]!, [1, 4, 8, 16]);
  assert.ok(guidance!.validFraction > 0.5);
  assert.deepEqual(guidance!.gridFlow.data, expected.guidance!.gridFlow.data);
  assert.deepEqual(guidance!.gridMask, expected.guidance!.gridMask);
  assert.deepEqual(guidance!.warped, expected.guidance!.warped);
  assert.deepEqual(guidance!.weight, expected.guidance!.weight);
  assert.deepEqual(out.data, expected.out.data);
  // And back: the small size works again, in buffers of its own size.
  step(cache, small[2]!, [1, 4, 4, 8]);
  assert.equal(cache.workspace!.mask.length, 16 * 8);
});
