import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type BrowserRunConfig,
  renderBrowserMarkdown,
  renderBrowserTable,
  rtpStatsAverages,
  summarizeBrowserRun,
} from '../../bench/browser-report.js';
import { distribution } from '../../bench/e2e-report.js';
import {
  estimateRtpCaptureOffset,
  GlassToGlassMeter,
  MovingPercentiles,
  type GlassSample,
  unwrapRtp,
} from '../../client/src/glass-to-glass.js';

/** Deterministic pseudo-random numbers in [0, 1). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * A camera as WebRTC sees it: captures every `intervalMs` (± jitter), RTP = 90 × whole capture ms + offset
 * (mod 2^32), each frame encoded `encodeMs` later.
 */
function camera(options: {
  frames: number;
  intervalMs?: number;
  jitterMs?: number;
  rtpOffset: number;
  encodeMs: (i: number) => number;
  startMs?: number;
}) {
  const { frames, intervalMs = 1000 / 30, jitterMs = 0, rtpOffset, encodeMs, startMs = 1000 } = options;
  const random = lcg(7);
  const out: Array<{ captureMs: number; rtp32: number; sentMs: number }> = [];
  for (let i = 0; i < frames; i++) {
    const captureMs = startMs + i * intervalMs + (random() - 0.5) * 2 * jitterMs;
    const rtp32 = (Math.floor(captureMs) * 90 + rtpOffset) % 2 ** 32;
    out.push({ captureMs, rtp32, sentMs: captureMs + encodeMs(i) });
  }
  return out;
}

describe('glass-to-glass matching (client/src/glass-to-glass.ts)', () => {
  test('moving percentiles use nearest rank, as the benchmark reports do, over the window only', () => {
    const window = new MovingPercentiles(16, 1000);
    const values = [12, 3, 7, 40, 18, 5, 9, 22, 15, 1];
    values.forEach((v, i) => window.push(100 + i, v));
    const expected = distribution(values);
    assert.deepEqual(window.percentiles(200, 50, 95), [expected.p50, expected.p95]);
    window.push(1500, 1000);
    // At 1500 only the newest value is within 1000 ms.
    assert.equal(window.count(1500), 1);
    assert.equal(window.percentile(1500, 50), 1000);
    assert.ok(Number.isNaN(window.percentile(5000, 50)), 'an empty window has no percentile');
  });

  test('a ring full of newer values forgets the oldest', () => {
    const window = new MovingPercentiles(4, 10_000);
    [100, 100, 1, 2, 3, 4].forEach((v, i) => window.push(i, v));
    assert.equal(window.count(10), 4);
    assert.equal(window.percentile(10, 100), 4);
  });

  test('RTP timestamps unwrap across 2^32 in both directions', () => {
    assert.equal(unwrapRtp(undefined, 5), 5);
    assert.equal(unwrapRtp(2 ** 32 - 1000, 2000), 2 ** 32 + 2000);
    assert.equal(unwrapRtp(2 ** 32 + 2000, 2 ** 32 - 1000), 2 ** 32 - 1000);
    assert.equal(unwrapRtp(3 * 2 ** 32 + 10, 3000), 3 * 2 ** 32 + 3000);
  });

  test('the RTP-to-capture offset is found on a perfectly regular camera, not one frame interval early', () => {
    const rtpOffset = 123_456_789;
    const frames = camera({ frames: 120, rtpOffset, encodeMs: (i) => 3 + (i % 5) * 2 });
    const estimate = estimateRtpCaptureOffset(
      { rtpMs: frames.map((f) => f.rtp32 / 90), sentMs: frames.map((f) => f.sentMs), count: frames.length },
      { ms: frames.map((f) => f.captureMs), count: frames.length },
    );
    assert.ok(estimate, 'no estimate');
    // rtp/90 − capture = offset/90 − (capture's fraction of a ms): within 1 ms of offset/90.
    assert.ok(Math.abs(estimate.offsetMs - rtpOffset / 90) <= 1, `offset ${estimate.offsetMs} vs ${rtpOffset / 90}`);
    assert.ok(estimate.support > 0.9);

    // The rings rarely line up: here the oldest sent frame was evicted and the newest capture is not yet
    // reported, so "each frame with the capture before it" has one vote more than the true pairing.
    const sent = frames.slice(1);
    const captures = frames.slice(0, -1);
    const shifted = estimateRtpCaptureOffset(
      { rtpMs: sent.map((f) => f.rtp32 / 90), sentMs: sent.map((f) => f.sentMs), count: sent.length },
      { ms: captures.map((f) => f.captureMs), count: captures.length },
    );
    assert.ok(shifted);
    assert.ok(Math.abs(shifted.offsetMs - rtpOffset / 90) <= 1, `offset ${shifted.offsetMs} vs ${rtpOffset / 90} (one frame early?)`);
  });

  test('the offset survives jittery intervals, missing preview frames and a slow encoder', () => {
    const rtpOffset = 987_654;
    const frames = camera({ frames: 150, jitterMs: 4, rtpOffset, encodeMs: (i) => 5 + (i % 7) * 3 });
    const shown = frames.filter((_, i) => i % 4 !== 0); // the preview skipped every fourth capture
    const estimate = estimateRtpCaptureOffset(
      { rtpMs: frames.map((f) => f.rtp32 / 90), sentMs: frames.map((f) => f.sentMs), count: frames.length },
      { ms: shown.map((f) => f.captureMs), count: shown.length },
    );
    assert.ok(estimate);
    assert.ok(Math.abs(estimate.offsetMs - rtpOffset / 90) <= 1, `offset ${estimate.offsetMs} vs ${rtpOffset / 90}`);
  });

  test('no offset is claimed from too few frames or from captures unrelated to the sent frames', () => {
    const frames = camera({ frames: 5, rtpOffset: 0, encodeMs: () => 4 });
    assert.equal(
      estimateRtpCaptureOffset(
        { rtpMs: frames.map((f) => f.rtp32 / 90), sentMs: frames.map((f) => f.sentMs), count: frames.length },
        { ms: frames.map((f) => f.captureMs), count: frames.length },
      ),
      undefined,
    );
    const random = lcg(3);
    const sent = camera({ frames: 60, jitterMs: 10, rtpOffset: 0, encodeMs: () => 5 });
    const unrelated = Array.from({ length: 60 }, (_, i) => 1000 + i * 33 + random() * 30);
    assert.equal(
      estimateRtpCaptureOffset(
        { rtpMs: sent.map((f) => (f.rtp32 + Math.floor(random() * 90 * 30)) / 90), sentMs: sent.map((f) => f.sentMs), count: sent.length },
        { ms: unrelated, count: unrelated.length },
      ),
      undefined,
    );
  });

  test('a displayed frame is matched by its RTP timestamp and split into capture → sent → received → shown', () => {
    const meter = new GlassToGlassMeter({ recalibrateMs: 0 });
    const rtpOffset = 2 ** 32 - 90 * 1500; // wraps halfway through
    const frames = camera({ frames: 90, rtpOffset, encodeMs: () => 6 });
    const samples: GlassSample[] = [];
    meter.onSample = (s) => samples.push(s);
    for (const f of frames) {
      meter.onCapture(f.captureMs);
      meter.onSent(f.rtp32, f.sentMs);
    }
    const last = frames.at(-1)!;
    for (const f of frames.slice(30)) {
      const sample = meter.onDisplayed(f.rtp32, f.sentMs + 40, f.sentMs + 55);
      assert.ok(sample, 'a sent frame was not matched');
    }
    assert.equal(meter.onDisplayed(12345, last.sentMs + 40, last.sentMs + 60), undefined, 'an unknown RTP timestamp matched');
    const s = samples.at(-1)!;
    assert.equal(s.rtpTimestamp, last.rtp32);
    assert.ok(s.fromCapture);
    assert.ok(Math.abs(s.captureMs - last.captureMs) <= 1, `capture ${s.captureMs} vs ${last.captureMs}`);
    assert.equal(s.sentMs, last.sentMs);
    const summary = meter.summary(last.sentMs + 60);
    assert.equal(summary.displayed, 61);
    assert.equal(summary.matched, 60);
    assert.ok(Math.abs(summary.glassP50 - 61) <= 1, `glass p50 ${summary.glassP50}`);
    assert.ok(Math.abs(summary.captureToSentP50 - 6) <= 1);
    assert.equal(summary.sentToReceiveP50, 40);
    assert.equal(summary.receiveToDisplayP50, 15);
  });

  test('without capture times glass-to-glass starts at the encoder output and says so', () => {
    const meter = new GlassToGlassMeter();
    meter.onSent(1000, 50);
    const sample = meter.onDisplayed(1000, 90, 120);
    assert.ok(sample);
    assert.equal(sample.fromCapture, false);
    assert.equal(sample.captureMs, 50);
    const summary = meter.summary(120);
    assert.equal(summary.fromCapture, false);
    assert.equal(summary.glassP50, 70);
    assert.ok(Number.isNaN(summary.captureToSentP50));
  });

  test('sent frames older than the ring no longer match', () => {
    const meter = new GlassToGlassMeter({ sentCapacity: 8 });
    for (let i = 0; i < 20; i++) meter.onSent(i * 3000, i * 33);
    assert.equal(meter.onDisplayed(0, 700, 710), undefined);
    assert.ok(meter.onDisplayed(19 * 3000, 700, 710));
  });
});

describe('browser benchmark report (bench/browser-report.ts)', () => {
  const config: BrowserRunConfig = {
    label: 'unit',
    seconds: 1,
    camera: '640×480@30 y4m',
    chromium: 'Chromium 1',
    model: 'default',
    provider: 'cpu',
    modelWidth: 320,
    modelHeight: 256,
    style: 'sketch',
    steps: 1,
    consistency: 0.5,
    budgetMs: 40,
    machine: 'test',
  };

  test('the server’s share is its latency over glass-to-glass for frames matched by RTP timestamp', () => {
    const samples: GlassSample[] = [
      { rtpTimestamp: 90, captureMs: 0, fromCapture: true, sentMs: 5, receiveMs: 45, displayMs: 80 },
      { rtpTimestamp: 180, captureMs: 10, fromCapture: true, sentMs: 15, receiveMs: 35, displayMs: 60 },
      { rtpTimestamp: 270, captureMs: 20, fromCapture: true, sentMs: 25, receiveMs: NaN, displayMs: 100 },
    ];
    const server = new Map([
      [90, { arrivalMs: 1_000_000, outMs: 1_000_020 }],
      [180, { arrivalMs: 2_000_000, outMs: 2_000_010 }],
    ]);
    const report = summarizeBrowserRun(config, samples, server, {
      startedAt: 'now',
      displayedFrames: 4,
      matchedFrames: 3,
      windowSeconds: 2,
      inputFps: 30,
      overlay: '60 / 80 ms',
    });
    assert.deepEqual(report.frames, [
      [90, 80, 20],
      [180, 50, 10],
      [270, 80, null],
    ]);
    assert.equal(report.glassToGlassMs.p50, 80);
    assert.equal(report.serverLatencyMs.count, 2);
    assert.deepEqual([...[report.serverShare.p50, report.serverShare.max]].sort(), [0.2, 0.25]);
    assert.equal(report.transportMs.count, 2);
    assert.equal(report.transportMs.max, 20); // 45 − 5 − 20
    assert.equal(report.matchedRatio, 0.75);
    assert.equal(report.serverMatchedRatio, 2 / 3);
    assert.equal(report.outputFps, 2);
    assert.match(renderBrowserTable(report), /glass-to-glass p50 \/ p95 \/ p99 .* 80\.0 \/ 80\.0 \/ 80\.0 ms/);
    assert.match(renderBrowserMarkdown(report), /\| server share of glass-to-glass p50 \/ p95 \| 20\.0% \/ 25\.0% \|/);
  });

  test('getStats counters become per-frame averages over the window, and unknown where a counter is missing', () => {
    const avg = rtpStatsAverages(
      {
        totalEncodeTime: 1,
        framesEncoded: 100,
        jitterBufferDelay: 4,
        jitterBufferEmittedCount: 100,
        totalDecodeTime: 0.1,
        framesDecoded: 100,
      },
      {
        totalEncodeTime: 1.5,
        framesEncoded: 200,
        jitterBufferDelay: 7,
        jitterBufferEmittedCount: 150,
        totalDecodeTime: 0.2,
        framesDecoded: 150,
      },
    );
    assert.equal(avg.encodeMs, 5);
    assert.equal(avg.jitterBufferMs, 60);
    assert.ok(Math.abs(avg.decodeMs - 2) < 1e-9);
    assert.ok(Number.isNaN(avg.jitterBufferTargetMs));
  });
});
