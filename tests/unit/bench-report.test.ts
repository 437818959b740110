import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type FrameRecord,
  type RunConfig,
  distribution,
  renderComparison,
  renderHtml,
  renderMarkdown,
  summarize,
} from '../../bench/e2e-report.js';

const config: RunConfig = {
  label: 'test',
  seconds: 1,
  fps: 10,
  codec: 'VP8',
  sessions: 1,
  inputWidth: 640,
  inputHeight: 480,
  modelWidth: 320,
  modelHeight: 256,
  steps: 1,
  consistency: 0,
  provider: 'cpu',
  model: 'm',
  budgetMs: 40,
  machine: 'test',
};

function frame(i: number, latency: number | undefined): FrameRecord {
  const arrival = 1000 + i * 100;
  if (latency === undefined) return { session: 0, rtpTimestamp: i * 9000, sentByClientMs: arrival - 2 };
  // Stages that tile the frame's time exactly: decode 3, mailbox 1, dispatch 0.5+0.5, denoise (latency-9), encode 4.
  const stages = [
    { name: 'decode' as const, startMs: arrival, endMs: arrival + 3 },
    { name: 'mailbox' as const, startMs: arrival + 3, endMs: arrival + 4 },
    { name: 'dispatch' as const, startMs: arrival + 4, endMs: arrival + 4.5 },
    { name: 'denoise' as const, startMs: arrival + 4.5, endMs: arrival + latency - 4.5 },
    { name: 'dispatch' as const, startMs: arrival + latency - 4.5, endMs: arrival + latency - 4 },
    { name: 'encode' as const, startMs: arrival + latency - 4, endMs: arrival + latency },
  ];
  const path =
    i === 3 ? { kind: 'model' as const, steps: 1, scale: 0.5 as const } : { kind: 'model' as const, steps: 1, scale: 1 as const };
  return {
    session: 0,
    rtpTimestamp: i * 9000,
    sentByClientMs: arrival - 2,
    arrivalMs: arrival,
    firstPacketOutMs: arrival + latency,
    stages,
    path,
    receivedByClientMs: arrival + latency + 1,
  };
}

test('distribution uses nearest-rank percentiles', () => {
  const d = distribution([5, 1, 4, 2, 3]);
  assert.deepEqual([d.p50, d.p95, d.max, d.count], [3, 5, 5, 5]);
});

test('summarize: stage records add up to the frame latency, repeated stages are summed, drops and misses are counted', () => {
  const records = [frame(0, 20), frame(1, 30), frame(2, undefined), frame(3, 50)];
  const r = summarize(config, records, {
    startMs: 900,
    eventLoopDelayMs: { p50: 1, p99: 2, max: 3 },
    cpuPercent: 50,
    firstFrameMs: new Map([[0, 1021]]),
    connectedMs: new Map([[0, 1000]]),
  });
  assert.equal(r.latencyMs.p50, 30);
  assert.equal(r.stagesMs.dispatch!.p50, 1, 'dispatch in + out = 1 ms');
  // Σ stage medians = decode 3 + mailbox 1 + dispatch 1 + denoise 21 + encode 4 = latency median 30.
  const sum = Object.values(r.stagesMs).reduce((a, d) => a + d.p50, 0);
  assert.equal(sum, 30);
  // Compute stages exclude mailbox and dispatch: 3 + 21 + 4 = 28 → ratio 30 / 28.
  assert.ok(Math.abs(r.overheadRatio - 30 / 28) < 1e-9);
  assert.equal(r.dropRate, 0.25);
  assert.ok(Math.abs(r.deadlineMissRate - 1 / 3) < 1e-9);
  // Per frame, in arrival order: when, latency, the engine's path and each stage's ms (dispatch in + out summed).
  assert.deepEqual(
    r.frames.map((f) => [f.atS, f.latencyMs, f.path?.kind === 'model' ? f.path.scale : 'reuse']),
    [
      [0.1, 20, 1],
      [0.2, 30, 1],
      [0.4, 50, 0.5],
    ],
  );
  assert.deepEqual(r.frames[2]!.stagesMs, { decode: 3, mailbox: 1, dispatch: 1, denoise: 41, encode: 4 });
  assert.match(renderMarkdown(r), /model at full \/ half resolution \/ previous output again \| 2 \/ 1 \/ 0 \|/);
  assert.equal(r.timeToFirstFrameMs, 21);
  assert.equal(r.sessions[0]!.framesOut, 3);
});

test('renderings name the key figures', () => {
  const r = summarize(config, [frame(0, 20), frame(1, 30)], {
    startMs: 900,
    eventLoopDelayMs: { p50: 1, p99: 2, max: 3 },
    cpuPercent: 50,
    firstFrameMs: new Map(),
    connectedMs: new Map(),
  });
  assert.match(renderMarkdown(r), /server latency p50 \/ p95 \/ p99 .*\| 20\.0 \/ 30\.0 \/ 30\.0 ms/);
  assert.match(renderHtml(r), /<svg/);
  assert.match(renderComparison(r, r), /\| latency p50 ms \| 20\.00 \| 20\.00 \| 1\.00 \|/);
});
