import assert from 'node:assert/strict';
import { test } from 'node:test';
import { double, Doubler, halve } from '../../models/resample.js';

test('halve averages 2×2 blocks', () => {
  const data = new Uint8Array([0, 0, 0, 100, 100, 100, 200, 200, 200, 100, 100, 100]);
  assert.deepEqual([...halve({ width: 2, height: 2, data }).data], [100, 100, 100]);
});

test('double keeps a flat image flat and preserves size ×2', () => {
  const img = { width: 3, height: 2, data: new Uint8Array(18).fill(77) };
  const d = double(img);
  assert.deepEqual([d.width, d.height], [6, 4]);
  assert.ok(d.data.every((v) => v === 77));
});

test('halve then double approximates a smooth gradient', () => {
  const w = 16;
  const h = 8;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.fill(x * 10, (y * w + x) * 3, (y * w + x) * 3 + 3);
  const back = double(halve({ width: w, height: h, data }));
  let err = 0;
  for (let i = 0; i < data.length; i++) err += Math.abs(back.data[i]! - data[i]!);
  assert.ok(err / data.length < 3, `mean error ${err / data.length}`);
});

// The float formula the upscaler must equal: source position (X + 0.5) / 2 − 0.5, clamped, bilinear, rounded.
function bilinearReference(image: { width: number; height: number; data: Uint8Array }): Uint8Array {
  const { width: w, height: h, data } = image;
  const out = new Uint8Array(w * h * 12);
  for (let Y = 0; Y < 2 * h; Y++) {
    const sy = Math.min(h - 1, Math.max(0, (Y + 0.5) / 2 - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(h - 1, y0 + 1);
    const fy = sy - y0;
    for (let X = 0; X < 2 * w; X++) {
      const sx = Math.min(w - 1, Math.max(0, (X + 0.5) / 2 - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(w - 1, x0 + 1);
      const fx = sx - x0;
      for (let c = 0; c < 3; c++) {
        const at = (x: number, y: number) => data[(y * w + x) * 3 + c]!;
        const v = (at(x0, y0) * (1 - fx) + at(x1, y0) * fx) * (1 - fy) + (at(x0, y1) * (1 - fx) + at(x1, y1) * fx) * fy;
        out[(Y * 2 * w + X) * 3 + c] = Math.round(v);
      }
    }
  }
  return out;
}

test('double gives the same bytes as the float bilinear formula, edges included, with a reused Doubler', () => {
  const doubler = new Doubler();
  for (const [w, h, seed] of [
    [7, 5, 1],
    [16, 9, 2],
    [1, 1, 3],
    [32, 32, 4],
  ] as const) {
    let s = seed;
    const data = Uint8Array.from({ length: w * h * 3 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
    const image = { width: w, height: h, data };
    assert.deepEqual(doubler.double(image).data, bilinearReference(image), `${w}×${h}`);
  }
});
