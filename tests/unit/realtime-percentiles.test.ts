import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MovingPercentiles, RateMeter } from '../../realtime/percentiles.js';

test('nearest-rank percentiles over the window', () => {
  const p = new MovingPercentiles(100);
  for (let i = 1; i <= 100; i++) p.add(i);
  assert.equal(p.percentile(50), 50);
  assert.equal(p.percentile(95), 95);
  assert.equal(p.percentile(100), 100);
  assert.ok(Number.isNaN(new MovingPercentiles().percentile(50)));
});

test('the window forgets old samples', () => {
  const p = new MovingPercentiles(10);
  for (let i = 0; i < 10; i++) p.add(1000);
  for (let i = 0; i < 10; i++) p.add(1);
  assert.equal(p.percentile(99), 1);
  assert.equal(p.count, 10);
});

test('rate meter measures events per second', () => {
  const r = new RateMeter(2000);
  for (let i = 0; i <= 30; i++) r.mark(i * (1000 / 30));
  assert.ok(Math.abs(r.rate(1000) - 30) < 0.5, String(r.rate(1000)));
});
