// The engine's own behaviour (mailbox, parameters, latency accounting) against an in-test Restyler
// that inverts pixels after a set delay; the real model runtime is tested in models-* and e2e tests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RestyleRequest, RestyleResult, Restyler } from '../../models/restyle-types.js';
import { nowMs } from '../../frame/clock.js';
import type { VideoFrame } from '../../frame/video-frame.js';
import { STYLE_TRANSITION_FRAMES, RestyleEngine } from '../../realtime/restyle-engine.js';

class InvertingRestyler implements Restyler {
  readonly requests: RestyleRequest[] = [];
  released: string[] = [];
  queueDepth = 0;
  utilization(): number {
    return 0;
  }
  readonly info = {
    name: 'invert',
    width: 4,
    height: 2,
    styles: ['a', 'b'],
    steps: [1, 2],
    conditioning: 'styles' as const,
    defaults: { style: 'a', strength: 0.5, steps: 1 },
    provider: 'cpu' as const,
    workers: 1,
  };
  constructor(private readonly delayMs: number) {}
  async restyle(request: RestyleRequest): Promise<RestyleResult> {
    this.requests.push(request);
    const start = nowMs();
    await new Promise((r) => setTimeout(r, this.delayMs));
    const data = request.image.data.map((v) => 255 - v);
    return { image: { ...request.image, data }, stages: [{ name: 'denoise', startMs: start, endMs: nowMs() }] };
  }
  releaseStream(id: string): void {
    this.released.push(id);
  }
  async close(): Promise<void> {}
}

function frame(seq: number): VideoFrame {
  return {
    image: { width: 4, height: 2, data: new Uint8Array(24).fill(seq) },
    rtpTimestamp: 1000 + seq * 3000,
    arrivalMs: nowMs(),
    seq,
    stages: [],
  };
}

const params = { style: 'a', prompt: '', strength: 0.5, steps: 1, seed: 1, consistency: 0, similarityFilter: false };

test('output frames keep the input RTP timestamp, carry the restyled pixels and stage records in time order', async () => {
  const restyler = new InvertingRestyler(5);
  const out: VideoFrame[] = [];
  const engine = new RestyleEngine({ streamId: 's', restyler, params, budgetMs: 40, onOutput: (f) => out.push(f) });
  engine.push(frame(7));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(out.length, 1);
  assert.equal(out[0]!.rtpTimestamp, 1000 + 7 * 3000);
  assert.equal(out[0]!.image.data[0], 255 - 7);
  const names = out[0]!.stages.map((s) => s.name);
  assert.deepEqual(names, ['mailbox', 'dispatch', 'denoise', 'dispatch']);
  for (let i = 1; i < out[0]!.stages.length; i++) {
    assert.ok(out[0]!.stages[i]!.startMs >= out[0]!.stages[i - 1]!.endMs - 1e-6, 'stages do not overlap');
  }
  engine.close();
});

test('under load the newest frame wins and replaced frames count as dropped', async () => {
  const restyler = new InvertingRestyler(30);
  const out: VideoFrame[] = [];
  const engine = new RestyleEngine({ streamId: 's', restyler, params, budgetMs: 40, onOutput: (f) => out.push(f) });
  for (let i = 0; i < 5; i++) engine.push(frame(i));
  await new Promise((r) => setTimeout(r, 120));
  assert.deepEqual(out.map((f) => f.seq), [0, 4]);
  assert.equal(engine.stats().droppedFrames, 3);
  engine.close();
});

test('a parameter change applies to the next frame dispatched', async () => {
  const restyler = new InvertingRestyler(1);
  const engine = new RestyleEngine({ streamId: 's', restyler, params, budgetMs: 40, onOutput: () => undefined });
  engine.push(frame(1));
  await new Promise((r) => setTimeout(r, 20));
  engine.updateParams({ style: 'b', steps: 2 });
  engine.push(frame(2));
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(restyler.requests.map((r) => [r.style, r.steps]), [['a', 1], ['b', 2]]);
  // ...and the new style fades in: the first frame after the change conditions on a blend.
  assert.deepEqual(restyler.requests[1]!.styleBlend, { from: 'a', to: 'b', t: 1 / STYLE_TRANSITION_FRAMES });
  engine.close();
  assert.deepEqual(restyler.released, ['s']);
});

test('latency is accounted from arrival to first packet out, and late frames count as deadline misses', () => {
  const engine = new RestyleEngine({ streamId: 's', restyler: new InvertingRestyler(1), params, budgetMs: 40, onOutput: () => undefined });
  const f = frame(1);
  engine.frameSent(f, f.arrivalMs + 25);
  engine.frameSent(f, f.arrivalMs + 55);
  const s = engine.stats();
  assert.equal(s.latencyP50Ms, 25);
  assert.equal(s.latencyP99Ms, 55);
  assert.equal(s.deadlineMisses, 1);
  engine.close();
});

test('the similarity filter reuses the output for an unchanged input, refreshes every 10 frames, and runs on a change', async () => {
  const restyler = new InvertingRestyler(1);
  const out: VideoFrame[] = [];
  const engine = new RestyleEngine({
    streamId: 's',
    restyler,
    params: { ...params, similarityFilter: true },
    budgetMs: 1000,
    onOutput: (f) => out.push(f),
  });
  for (let i = 0; i < 12; i++) {
    const f = frame(0);
    f.seq = i;
    engine.push(f);
    await new Promise((r) => setTimeout(r, 10));
  }
  // Frame 0 runs, 1–10 are reused, 11 refreshes.
  assert.equal(restyler.requests.length, 2);
  assert.equal(engine.stats().reused, 10);
  assert.equal(out.length, 12);
  assert.ok(out[5]!.stages.some((s) => s.name === 'reuse'));
  // Each emitted frame says which path it took (the benchmark's per-frame records read it).
  assert.deepEqual(out[0]!.path, { kind: 'model', steps: 1, scale: 1 });
  assert.deepEqual(out[5]!.path, { kind: 'reuse' });
  engine.push(frame(200)); // a different picture
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(restyler.requests.length, 3);
  engine.close();
});

test('with the filter off, an unchanged input is restyled every frame', async () => {
  const restyler = new InvertingRestyler(1);
  const engine = new RestyleEngine({ streamId: 's', restyler, params, budgetMs: 1000, onOutput: () => undefined });
  for (let i = 0; i < 4; i++) {
    engine.push(frame(0));
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(restyler.requests.length, 4);
  engine.close();
});

test('after a parameter change the previous output is never reused, even for an unchanged input', async () => {
  const restyler = new InvertingRestyler(1);
  const engine = new RestyleEngine({ streamId: 's', restyler, params: { ...params, similarityFilter: true }, budgetMs: 1000, onOutput: () => undefined });
  engine.push(frame(0));
  await new Promise((r) => setTimeout(r, 10));
  engine.push(frame(0));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(restyler.requests.length, 1, 'unchanged input reused');
  engine.updateParams({ style: 'b' });
  engine.push(frame(0));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(restyler.requests.length, 2);
  assert.equal(restyler.requests[1]!.style, 'b');
  engine.close();
});

test('a style change blends the two styles over STYLE_TRANSITION_FRAMES frames, then conditions on the new style alone', async () => {
  const restyler = new InvertingRestyler(0);
  const engine = new RestyleEngine({ streamId: 's', restyler, params, budgetMs: 1000, onOutput: () => undefined });
  const settle = () => new Promise((r) => setTimeout(r, 5));
  engine.push(frame(0));
  await settle();
  engine.updateParams({ style: 'b' });
  for (let i = 1; i <= STYLE_TRANSITION_FRAMES + 2; i++) {
    engine.push(frame(i));
    await settle();
  }
  const blends = restyler.requests.slice(1).map((r) => r.styleBlend?.t);
  const ramp = Array.from({ length: STYLE_TRANSITION_FRAMES }, (_, k) => (k + 1) / STYLE_TRANSITION_FRAMES);
  assert.deepEqual(blends, [...ramp, undefined, undefined]);
  assert.ok(restyler.requests.slice(1).every((r) => r.style === 'b'));
  // Changing the parameters without changing the style starts no blend.
  engine.updateParams({ strength: 0.3 });
  engine.push(frame(99));
  await settle();
  assert.equal(restyler.requests.at(-1)!.styleBlend, undefined);
  engine.close();
});

test('on a text model a prompt change blends the two prompts over STYLE_TRANSITION_FRAMES frames; an explicit blend applies as given', async () => {
  const restyler = new InvertingRestyler(0);
  (restyler.info as { conditioning: string }).conditioning = 'text';
  const engine = new RestyleEngine({ streamId: 's', restyler, params: { ...params, prompt: 'a cat' }, budgetMs: 1000, onOutput: () => undefined });
  const settle = () => new Promise((r) => setTimeout(r, 5));
  engine.push(frame(0));
  await settle();
  assert.deepEqual(restyler.requests[0]!.promptBlend, [{ prompt: 'a cat', weight: 1 }]);
  engine.updateParams({ prompt: 'a dog' });
  engine.push(frame(1));
  await settle();
  const k = 1 / STYLE_TRANSITION_FRAMES;
  assert.deepEqual(restyler.requests[1]!.promptBlend, [
    { prompt: 'a cat', weight: 1 - k },
    { prompt: 'a dog', weight: k },
  ]);
  assert.equal(restyler.requests[1]!.styleBlend, undefined, 'no style blend on a text model');
  const mix = [
    { prompt: 'a cat', weight: 1 },
    { prompt: 'a fox', weight: 3 },
  ];
  engine.updateParams({ promptBlend: mix });
  engine.push(frame(2));
  await settle();
  assert.deepEqual(restyler.requests[2]!.promptBlend, mix);
  engine.close();
});

test('under deadline pressure a still input is not served the same output forever: reuse is bounded and skipped during a fade', async () => {
  const restyler = new InvertingRestyler(30); // every run costs 30 ms against a 20 ms budget
  const engine = new RestyleEngine({ streamId: 's', restyler, params, budgetMs: 20, onOutput: () => undefined });
  const still = async (n: number, gapMs = 5): Promise<void> => {
    for (let i = 0; i < n; i++) {
      engine.push(frame(0));
      await new Promise((r) => setTimeout(r, gapMs));
    }
    await new Promise((r) => setTimeout(r, 40));
  };
  await still(1); // the first run teaches the scheduler that a run does not fit
  await still(14);
  assert.ok(engine.stats().reused >= 10, `reused ${engine.stats().reused}`);
  assert.ok(restyler.requests.length >= 2, 'after ten reuses in a row a frame is computed again');
  // A style change must reach the screen frame by frame, not be frozen by reuse.
  const before = restyler.requests.length;
  engine.updateParams({ style: 'b' });
  await still(9, 40); // one frame per run: none is replaced in the mailbox
  const fading = restyler.requests.slice(before).filter((r) => r.styleBlend);
  // The scheduler may still drop up to two frames in a row for the deadline, never reuse one.
  assert.ok(fading.length >= 3, `fade frames computed: ${fading.length}`);
  engine.close();
});
