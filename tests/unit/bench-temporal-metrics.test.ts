// The benchmark's temporal metrics on inputs whose answer is known.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadPhoto } from '../../bench/loopback-client.js';
import { makeMotionClip } from '../../bench/motion-clips.js';
import { flickerIndex, psnr, warpError } from '../../bench/temporal-metrics.js';
import type { FlowField } from '../../realtime/optical-flow.js';

function negate(f: FlowField): FlowField {
  return { ...f, data: f.data.map((v) => -v) };
}

test('warp error is near zero for a camera pan with its true flow, and large with a wrong flow', async () => {
  const photo = await loadPhoto('models/default/testdata/heldout.png');
  // The pan's first frames translate by a constant vector, so the backward flow is its negation;
  // bilinear resampling aside, warping with the true flow lines the frames up.
  const clip = makeMotionClip(photo, undefined, { kind: 'pan', width: 160, height: 128, frames: 3 });
  const forward = clip.flows;
  const backward = forward.map(negate); // constant flow: the backward field is the negation
  const right = warpError(clip.frames, forward, backward);
  const zero = forward.map((f) => ({ ...f, data: new Float32Array(f.data.length) }));
  const wrong = warpError(clip.frames, zero, zero);
  assert.ok(right < 4, `warp error with the true flow ${right.toFixed(2)}`);
  assert.ok(wrong > 2 * right, `with a zero flow ${wrong.toFixed(2)}`);
});

test('flicker index compares output change to input change; PSNR of equal images is infinite', () => {
  const img = (v: number) => ({ width: 2, height: 1, data: new Uint8Array(6).fill(v) });
  assert.equal(flickerIndex([img(0), img(10), img(0)], [img(5), img(7), img(5)]), 0.2);
  assert.equal(psnr(img(3), img(3)), Infinity);
  assert.ok(Math.abs(psnr(img(0), img(255)) - 0) < 1e-9);
});
