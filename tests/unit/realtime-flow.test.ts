// Optical flow and the forward–backward occlusion check on clips with known motion made from the
// held-out real photo. Thresholds are in flow-grid pixels (model resolution / 4); `sds bench flow`
// reports the measured values (about 0.09 for the pan and 0.19 for the zoom).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadPhoto } from '../../bench/loopback-client.js';
import { makeMotionClip, type MotionKind } from '../../bench/motion-clips.js';
import {
  downsampleFlow,
  downsamplePlane,
  endPointError,
  occlusionMask,
  photometricMask,
  validityMask,
  warpPlanes,
} from '../../realtime/flow-warp.js';
import { estimateFlow, FlowEstimator, grayFromRgb } from '../../realtime/optical-flow.js';

const W = 320;
const H = 256;
const GRID = 4;

async function meanEpe(kind: MotionKind): Promise<number> {
  const photo = await loadPhoto('models/default/testdata/heldout.png');
  const clip = makeMotionClip(photo, undefined, { kind, width: W, height: H, frames: 5 });
  let sum = 0;
  for (let t = 0; t + 1 < clip.frames.length; t++) {
    const a = grayFromRgb(clip.frames[t]!, GRID);
    const b = grayFromRgb(clip.frames[t + 1]!, GRID);
    const flow = estimateFlow(a, b);
    const truth = downsampleFlow(clip.flows[t]!, a.width, a.height);
    const visible = downsamplePlane(clip.visible[t]!, W, H, GRID).map((v) => (v === 1 ? 1 : 0));
    sum += endPointError(flow, truth, visible);
  }
  return sum / (clip.frames.length - 1);
}

test('flow of a camera pan over a real photo is within 0.25 grid px of the truth', async () => {
  const epe = await meanEpe('pan');
  assert.ok(epe < 0.25, `pan EPE ${epe.toFixed(3)}`);
});

test('flow of a zoom is within 0.35 grid px of the truth', async () => {
  const epe = await meanEpe('zoom');
  assert.ok(epe < 0.35, `zoom EPE ${epe.toFixed(3)}`);
});

test('zero motion gives (nearly) zero flow, and a flow estimate is not the zero field for motion', async () => {
  assert.ok((await meanEpe('static-noise')) < 0.05);
  // Sanity of the metric itself: the zero field is far from the pan's truth.
  const photo = await loadPhoto('models/default/testdata/heldout.png');
  const clip = makeMotionClip(photo, undefined, { kind: 'pan', width: W, height: H, frames: 2 });
  const truth = downsampleFlow(clip.flows[0]!, W / GRID, H / GRID);
  assert.ok(endPointError({ ...truth, data: new Float32Array(truth.data.length) }, truth) > 0.5);
});

test('the forward–backward check passes consistent flows and flags inconsistent ones by the stated rule', () => {
  const w = 6;
  const h = 4;
  const field = (u: number, v: number) => ({ width: w, height: h, data: new Float32Array(w * h * 2).map((_, i) => (i % 2 === 0 ? u : v)) });
  // Consistent: b = -f everywhere (inside the frame).
  const ok = occlusionMask(field(-1, 0), field(1, 0));
  assert.equal(ok[1 * w + 3], 1);
  assert.equal(ok[1 * w + 0], 0, 'x + b leaves the frame');
  // |b + f|² = 1 > 0.01·(1 + 4) + 0.5 → occluded; |b + f|² = 0.25 ≤ 0.55 → visible.
  assert.equal(occlusionMask(field(-1, 0), field(2, 0))[1 * w + 3], 0);
  assert.equal(occlusionMask(field(-1, 0), field(1.5, 0))[1 * w + 3], 1);
});

test('the occlusion mask flags most of the region an object uncovers and keeps the background valid', async () => {
  // A patch-based flow at this grid smears the object's motion about a grid pixel into the background,
  // so not every uncovered pixel can be caught; `sds bench flow` shows the same for OpenCV's DIS.
  const photo = await loadPhoto('models/default/testdata/heldout.png');
  const clip = makeMotionClip(photo, undefined, { kind: 'occluder', width: W, height: H, frames: 8 });
  let uncovered = 0;
  let flagged = 0;
  let background = 0;
  let backgroundValid = 0;
  for (let t = 0; t + 1 < clip.frames.length; t++) {
    const prev = grayFromRgb(clip.frames[t]!, GRID);
    const cur = grayFromRgb(clip.frames[t + 1]!, GRID);
    const backward = estimateFlow(cur, prev);
    const fb = occlusionMask(backward, estimateFlow(prev, cur));
    const pm = photometricMask(cur, prev, backward);
    const gw = prev.width;
    const before = clip.occluder![t]!;
    const after = clip.occluder![t + 1]!;
    // The background's true motion on the grid (a pan: every background pixel moves alike).
    const bg = downsampleFlow(clip.flows[t]!, gw, prev.height).data;
    const inRect = (r: typeof before, x: number, y: number, margin: number): boolean =>
      x >= r.x / GRID + margin && x < (r.x + r.width) / GRID - margin && y >= r.y / GRID + margin && y < (r.y + r.height) / GRID - margin;
    for (let y = 0; y < prev.height; y++) {
      for (let x = 0; x < gw; x++) {
        const i = y * gw + x;
        const valid = fb[i]! * pm[i]!;
        if (inRect(after, x, y, -1)) continue; // the object itself and its edge
        const px = x - bg[0]!; // where this background pixel was in frame t
        const py = y - bg[1]!;
        if (inRect(before, px, py, 0.5)) {
          uncovered++;
          if (valid === 0) flagged++;
        } else if (!inRect(before, px, py, -2) && x > 2 && y > 2 && x < gw - 3 && y < prev.height - 3) {
          background++;
          if (valid === 1) backgroundValid++;
        }
      }
    }
  }
  assert.ok(uncovered >= 50, `the clip uncovers a region (${uncovered} px)`);
  assert.ok(flagged / uncovered >= 0.5, `flagged ${flagged}/${uncovered} uncovered pixels`);
  assert.ok(backgroundValid / background >= 0.9, `background valid ${backgroundValid}/${background}`);
});

test('warping along a known translation moves the content by that translation', () => {
  const w = 8;
  const h = 6;
  const src = new Float32Array(2 * w * h).map((_, i) => i);
  const flow = { width: w, height: h, data: new Float32Array(w * h * 2).map((_, i) => (i % 2 === 0 ? 1 : 0)) };
  const out = warpPlanes(src, 2, flow);
  // out(x) = src(x + 1) inside the frame, clamped at the right edge.
  assert.equal(out[0], 1);
  assert.equal(out[w * h + 2 * w + 3], src[w * h + 2 * w + 4]);
  assert.equal(out[w - 1], src[w - 1]);
});

test('a flow estimator reuses its buffers across frames of one size and matches the one-off flow', async () => {
  const photo = await loadPhoto('models/default/testdata/heldout.png');
  const clip = makeMotionClip(photo, undefined, { kind: 'occluder', width: W, height: H, frames: 4 });
  const grays = clip.frames.map((f) => grayFromRgb(f, GRID));
  const estimator = new FlowEstimator();
  const a = estimator.prepare(grays[0]!);
  const levelBuffers = a.levels.map((l) => l.data);
  const b = estimator.prepare(grays[1]!);
  const out = estimator.estimate(a, b);
  assert.deepEqual(out.data, estimateFlow(grays[0]!, grays[1]!).data);
  // The next pair: frame 0's buffers take frame 2, the flow goes into the same field.
  const c = estimator.prepare(grays[2]!, a);
  assert.equal(c, a);
  assert.equal(c.levels[0], grays[2]);
  c.levels.slice(1).forEach((l, k) => assert.equal(l.data, levelBuffers[k + 1]));
  assert.equal(estimator.estimate(b, c, out), out);
  assert.deepEqual(out.data, estimateFlow(grays[1]!, grays[2]!).data);
  // Another size: new buffers of that size, the same answer as a one-off.
  const half = clip.frames.slice(2).map((f) => grayFromRgb(f, 2 * GRID));
  const d = estimator.prepare(half[0]!, b);
  assert.notEqual(d, b);
  assert.equal(d.levels[1]!.width, half[0]!.width >> 1);
  const small = estimator.estimate(d, estimator.prepare(half[1]!), out);
  assert.notEqual(small, out);
  assert.deepEqual(small.data, estimateFlow(half[0]!, half[1]!).data);
});

test('the validity mask is the occlusion mask times the photometric mask, bit for bit', async () => {
  const photo = await loadPhoto('models/default/testdata/heldout.png');
  const clip = makeMotionClip(photo, undefined, { kind: 'occluder', width: W, height: H, frames: 6 });
  for (let t = 0; t + 1 < clip.frames.length; t++) {
    const prev = grayFromRgb(clip.frames[t]!, GRID);
    const cur = grayFromRgb(clip.frames[t + 1]!, GRID);
    const backward = estimateFlow(cur, prev);
    const forward = estimateFlow(prev, cur);
    const fb = occlusionMask(backward, forward);
    const pm = photometricMask(cur, prev, backward);
    const out = new Float32Array(fb.length).fill(7); // stale values are overwritten
    assert.equal(validityMask(cur, prev, backward, forward, out), out);
    assert.deepEqual(
      out,
      fb.map((v, i) => v * pm[i]!),
    );
  }
});

test('the grey flow frame is the same whether the RGB is read by words or by bytes', () => {
  for (const factor of [4, 8]) {
    const w = 64;
    const h = 48;
    const rgb = new Uint8Array(w * h * 3).map((_, i) => (i * 131 + (i >> 7) * 17) & 0xff);
    // Word-aligned (read as 32-bit words) and one byte off (read byte by byte): the same pixels.
    const shifted = new Uint8Array(rgb.length + 1);
    shifted.set(rgb, 1);
    const words = grayFromRgb({ width: w, height: h, data: rgb }, factor);
    const bytes = grayFromRgb({ width: w, height: h, data: shifted.subarray(1) }, factor);
    assert.deepEqual(words.data, bytes.data);
    // And both are the box-averaged luma.
    let r = 0;
    let g = 0;
    let b = 0;
    for (let y = 0; y < factor; y++)
      for (let x = 0; x < factor; x++) {
        const i = 3 * ((factor + y) * w + 2 * factor + x);
        r += rgb[i]!;
        g += rgb[i + 1]!;
        b += rgb[i + 2]!;
      }
    const expected = Math.fround((0.299 * r + 0.587 * g + 0.114 * b) / (factor * factor));
    assert.ok(Math.abs(words.data[1 * words.width + 2]! - expected) < 1e-3);
  }
});
