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
  assert.deepEqual(
    [pick(s.plan(late)), pick(s.plan(late)), pick(s.plan(late)), pick(s.plan(late))],
    [['drop'], ['drop'], ['run', 1, 0.5], ['drop']],
  );
});

test('a path given up at start-up is probed again after 250 ms, not after the whole stale time', () => {
  const s = new DeadlineScheduler({ budgetMs: 40 });
  // A stream's first two full-resolution runs are slow (allocation, JIT): 50 ms each.
  s.recordRun({ steps: 1, scale: 1, fixedMs: 40, denoiseMs: 10, atMs: 0 });
  s.recordRun({ steps: 1, scale: 1, fixedMs: 40, denoiseMs: 10, atMs: 33 });
  assert.deepEqual(pick(s.plan({ arrivalMs: 66, nowMs: 66, steps: 1, similarity: undefined })), ['run', 1, 0.5]);
  s.recordRun({ steps: 1, scale: 0.5, fixedMs: 6, denoiseMs: 2, atMs: 80 });
  assert.deepEqual(pick(s.plan({ arrivalMs: 300, nowMs: 300, steps: 1, similarity: undefined })), ['run', 1, 0.5], 'not yet');
  assert.deepEqual(pick(s.plan({ arrivalMs: 330, nowMs: 330, steps: 1, similarity: undefined })), ['run', 1, 1], 'probe');
  s.recordRun({ steps: 1, scale: 1, fixedMs: 12, denoiseMs: 6, atMs: 350 });
  // The probe's fast run replaced the slow start-up samples: full resolution from here on.
  assert.deepEqual(pick(s.plan({ arrivalMs: 363, nowMs: 363, steps: 1, similarity: undefined })), ['run', 1, 1]);
});

test('probes of a path that stays over budget back off: 250, 500, 1000 ms … up to the stale time', () => {
  const s = new DeadlineScheduler({ budgetMs: 40, staleMs: 2000 });
  const slowFull = (at: number): void => s.recordRun({ steps: 1, scale: 1, fixedMs: 50, denoiseMs: 10, atMs: at });
  slowFull(0);
  const probes: number[] = [];
  for (let t = 10; t < 6000; t += 10) {
    const plan = s.plan({ arrivalMs: t, nowMs: t, steps: 1, similarity: undefined });
    if (plan.action === 'run' && plan.scale === 1) {
      probes.push(t);
      slowFull(t);
    } else if (plan.action === 'run') s.recordRun({ steps: 1, scale: 0.5, fixedMs: 6, denoiseMs: 2, atMs: t });
  }
  // Abandoned at 10 ms; each wait is counted from the frame after a probe (one 10 ms tick later).
  const waits = [probes[0]! - 10, ...probes.slice(1).map((t, i) => t - probes[i]! - 10)];
  const within = (v: number, lo: number): boolean => v > lo && v <= lo + 20;
  assert.ok(within(waits[0]!, 250) && within(waits[1]!, 500) && within(waits[2]!, 1000), `waits ${waits}`);
  assert.ok(waits.length >= 5 && waits.slice(3).every((w) => w >= 1990 && w <= 2020), `then every staleMs: ${waits}`);
});

test('a half-resolution estimate is not thrown away while the full path is in use', () => {
  const s = new DeadlineScheduler({ budgetMs: 40 });
  loaded(s, 0); // full 1 step 18 ms, half 4.5 ms (medians the same)
  for (let t = 30; t < 1000; t += 33) {
    assert.deepEqual(pick(s.plan({ arrivalMs: t, nowMs: t, steps: 2, similarity: undefined })), ['run', 2, 1]);
    s.recordRun({ steps: 2, scale: 1, fixedMs: 10, denoiseMs: 16, atMs: t });
  }
  // 34 ms already gone, 2 left after egress: half resolution's known median (4.5) cannot make it: drop.
  assert.deepEqual(pick(s.plan({ arrivalMs: 1000, nowMs: 1034, steps: 1, similarity: undefined })), ['drop']);
});

// Full resolution: usually 14 ms, every fourth run 30 ms (a noisy host: p90 30, median 14). Half resolution: 20 ms
// every time, most of it the host upscale back to the stream's size.
function halfCostsMore(s: DeadlineScheduler, at: number): void {
  for (let i = 0; i < 20; i++) {
    s.recordRun({ steps: 1, scale: 1, fixedMs: i % 4 === 0 ? 22 : 6, denoiseMs: 8, atMs: at });
    s.recordRun({ steps: 1, scale: 0.5, fixedMs: 18, denoiseMs: 2, atMs: at });
    s.recordEgress(4);
  }
}

test('half resolution is not taken when it costs more end to end than full resolution (its upscale)', () => {
  const s = new DeadlineScheduler({ budgetMs: 40 });
  halfCostsMore(s, 0);
  // 12 ms gone, 24 left: full's p90 (30) does not fit, but its median (14) does and is cheaper than half's (20).
  assert.deepEqual(pick(s.plan({ arrivalMs: 0, nowMs: 12, steps: 1, similarity: undefined })), ['run', 1, 1]);
  // 23 ms gone, 13 left: neither fits at its median, and the cheaper path is still full resolution: drop...
  assert.deepEqual(pick(s.plan({ arrivalMs: 0, nowMs: 23, steps: 1, similarity: undefined })), ['drop']);
  assert.deepEqual(pick(s.plan({ arrivalMs: 0, nowMs: 23, steps: 1, similarity: undefined })), ['drop']);
  // ...and the frame that must not starve runs the cheaper path, full resolution, not half.
  assert.deepEqual(pick(s.plan({ arrivalMs: 0, nowMs: 23, steps: 1, similarity: undefined })), ['run', 1, 1]);
});

test('half resolution is taken when it is cheaper end to end', () => {
  const s = new DeadlineScheduler({ budgetMs: 40 });
  loaded(s, 0); // full 1 step 18 ms, half 4.5 ms
  assert.deepEqual(pick(s.plan({ arrivalMs: 0, nowMs: 20, steps: 1, similarity: undefined })), ['run', 1, 0.5]);
});
