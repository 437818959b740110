import assert from 'node:assert/strict';
import { test } from 'node:test';
import { double, halve } from '../../models/resample.js';

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
