import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeadlineScheduler } from '../../realtime/deadline-scheduler.js';

// Simulated stage costs: fixed 10 ms + 8 ms per step at full resolution; a quarter of that at half.
function loaded(s: DeadlineScheduler, at: number, factor = 1): void {
  for (let i = 0; i < 20; i++) {
    s.recordRun({ steps: 2, scale: 1, fixedMs: 10 * factor, denoiseMs: 16 * factor, atMs: at });
    s.recordRun({ steps: 1, scale: 0.5, fixedMs: 2.5 * factor, denoiseMs: 2 * factor, atMs: at });
    s.recordEgress(4);
  }
}

test('a frame that fits runs as requested', () => {
  const s = new DeadlineScheduler({ budgetMs: 40 });
  loaded(s, 0);
  // 40 budget − 4 egress = 36 left; 10 + 2×8 = 26 fits.
  assert.deepEqual(pick(s.plan({ arrivalMs: 0, nowMs: 0, steps: 2, similarity: undefined })), ['run', 2, 1]);
});

test('under pressure it degrades in order: reuse (similar input) → fewer steps → lower resolution → drop', () => {
  const s = new DeadlineScheduler({ budgetMs: 40 });
  loaded(s, 0);
  // 4 steps cost 42 > 36: a similar input reuses the previous output.
  assert.deepEqual(pick(s.plan({ arrivalMs: 0, nowMs: 0, steps: 4, similarity: 0.95 })), ['reuse']);
  // Not similar: fewest steps that fit — 3 steps cost 34 ≤ 36.
  assert.deepEqual(pick(s.plan({ arrivalMs: 0, nowMs: 0, steps: 4, similarity: 0.5 })), ['run', 3, 1]);
  // 15 ms already spent waiting: 21 left; 1 step at full costs 18 → fits.
  assert.deepEqual(pick(s.plan({ arrivalMs: 0, nowMs: 15, steps: 4, similarity: undefined })), ['run', 1, 1]);
  // 20 ms spent: 16 left; full 1 step (18) does not fit, half resolution (4.5) does.
  assert.deepEqual(pick(s.plan({ arrivalMs: 0, nowMs: 20, steps: 2, similarity: undefined })), ['run', 1, 0.5]);
  // 34 ms spent: 2 left: drop.
  assert.deepEqual(pick(s.plan({ arrivalMs: 0, nowMs: 34, steps: 1, similarity: undefined })), ['drop']);
});

test('it recovers when load falls: stale estimates are probed, fresh cheap ones restore the full path', () => {
  const s = new DeadlineScheduler({ budgetMs: 40, staleMs: 1000 });
  loaded(s, 0, 3); // everything 3× slower: full 1 step = 54 ms
  assert.deepEqual(pick(s.plan({ arrivalMs: 0, nowMs: 0, steps: 1, similarity: undefined })), ['run', 1, 0.5]);
  // Later, the full-resolution estimate is stale, so the next frame probes it...
  assert.deepEqual(pick(s.plan({ arrivalMs: 1500, nowMs: 1500, steps: 1, similarity: undefined })), ['run', 1, 1]);
  // ...and the probe's measurement replaces the stale window: one fast run restores the full path.
  s.recordRun({ steps: 1, scale: 1, fixedMs: 10, denoiseMs: 8, atMs: 1520 });
  assert.deepEqual(pick(s.plan({ arrivalMs: 1530, nowMs: 1530, steps: 1, similarity: undefined })), ['run', 1, 1]);
});

test('a probe that is still slow keeps the degraded path', () => {
  const s = new DeadlineScheduler({ budgetMs: 40, staleMs: 1000 });
  loaded(s, 0, 3);
  assert.deepEqual(pick(s.plan({ arrivalMs: 1500, nowMs: 1500, steps: 1, similarity: undefined })), ['run', 1, 1]);
  s.recordRun({ steps: 1, scale: 1, fixedMs: 30, denoiseMs: 24, atMs: 1560 });
  assert.deepEqual(pick(s.plan({ arrivalMs: 1570, nowMs: 1570, steps: 1, similarity: undefined })), ['run', 1, 0.5]);
});

function pick(p: ReturnType<DeadlineScheduler['plan']>): unknown[] {
  return p.action === 'run' ? [p.action, p.steps, p.scale] : [p.action];
}

test('it never drops more than two frames in a row: the third runs the cheapest path', () => {
  const s = new DeadlineScheduler({ budgetMs: 40 });
  loaded(s, 0, 10);
  const late = { arrivalMs: 0, nowMs: 0, steps: 1, similarity: undefined };
  assert.deepEqual([pick(s.plan(late)), pick(s.plan(late)), pick(s.plan(late)), pick(s.plan(late))], [['drop'], ['drop'], ['run', 1, 0.5], ['drop']]);
});
