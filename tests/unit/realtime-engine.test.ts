// The engine's own behaviour (mailbox, parameters, latency accounting, deadline decisions) against an in-test
// Restyler that inverts pixels, on a manual clock: a run "costs" what the test says, and a frame that arrives while
// a run is held waits in the mailbox, so the results follow from the test's arithmetic, not from the machine's load.
// The real model runtime is tested in models-* and e2e tests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RestyleRequest, RestyleResult, Restyler } from '../../models/restyle-types.js';
import type { VideoFrame } from '../../frame/video-frame.js';
import { STYLE_TRANSITION_FRAMES, RestyleEngine, type RestyleEngineOptions } from '../../realtime/restyle-engine.js';
import { ManualClock, settle } from '../support/manual-clock.js';

class InvertingRestyler implements Restyler {
  readonly requests: RestyleRequest[] = [];
  released: string[] = [];
  queueDepth = 0;
  /** Runs waiting for release() while `held` is set (a busy model). */
  private readonly waiting: Array<() => void> = [];
  held = false;
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
  /** Each run takes `costMs` on the clock. */
  constructor(
    private readonly clock: ManualClock,
    private readonly costMs: number,
  ) {}
  async restyle(request: RestyleRequest): Promise<RestyleResult> {
    this.requests.push(request);
    if (this.held) await new Promise<void>((r) => this.waiting.push(r));
    const start = this.clock.now();
    this.clock.advance(this.costMs);
    const data = request.image.data.map((v) => 255 - v);
    return { image: { ...request.image, data }, stages: [{ name: 'denoise', startMs: start, endMs: this.clock.now() }] };
  }
  /** Lets the oldest held run finish. */
  release(): void {
    this.waiting.shift()?.();
  }
  releaseStream(id: string): void {
    this.released.push(id);
  }
  async close(): Promise<void> {}
}

let clock = new ManualClock();

function frame(seq: number): VideoFrame {
  return {
    image: { width: 4, height: 2, data: new Uint8Array(24).fill(seq) },
    rtpTimestamp: 1000 + seq * 3000,
    arrivalMs: clock.now(),
    seq,
    stages: [],
  };
}

function engineWith(restyler: InvertingRestyler, options: Partial<RestyleEngineOptions> = {}): RestyleEngine {
  return new RestyleEngine({ streamId: 's', restyler, params, budgetMs: 1000, onOutput: () => undefined, clock, ...options });
}

function restylerOf(costMs: number): InvertingRestyler {
  clock = new ManualClock();
  return new InvertingRestyler(clock, costMs);
}

const params = { style: 'a', prompt: '', strength: 0.5, steps: 1, seed: 1, consistency: 0, similarityFilter: false };

test('output frames keep the input RTP timestamp, carry the restyled pixels and stage records in time order', async () => {
  const restyler = restylerOf(5);
  const out: VideoFrame[] = [];
  const engine = engineWith(restyler, { budgetMs: 40, onOutput: (f) => out.push(f) });
  engine.push(frame(7));
  await settle();
  assert.equal(out.length, 1);
  assert.equal(out[0]!.rtpTimestamp, 1000 + 7 * 3000);
  assert.equal(out[0]!.image.data[0], 255 - 7);
  const names = out[0]!.stages.map((s) => s.name);
  assert.deepEqual(names, ['mailbox', 'dispatch', 'denoise', 'dispatch']);
  for (let i = 1; i < out[0]!.stages.length; i++) {
    assert.ok(out[0]!.stages[i]!.startMs >= out[0]!.stages[i - 1]!.endMs, 'stages do not overlap');
  }
  const denoise = out[0]!.stages.find((s) => s.name === 'denoise')!;
  assert.equal(denoise.endMs - denoise.startMs, 5);
  engine.close();
});

test('under load the newest frame wins and replaced frames count as dropped', async () => {
  const restyler = restylerOf(30);
  restyler.held = true;
  const out: VideoFrame[] = [];
  const engine = engineWith(restyler, { budgetMs: 40, onOutput: (f) => out.push(f) });
  for (let i = 0; i < 5; i++) {
    engine.push(frame(i)); // 0 runs (held); 1, 2 and 3 are replaced in the mailbox by the next one
    await settle();
  }
  restyler.release();
  await settle();
  restyler.release();
  await settle();
  assert.deepEqual(
    out.map((f) => f.seq),
    [0, 4],
  );
  assert.equal(engine.stats().droppedFrames, 3);
  engine.close();
});

test('a parameter change applies to the next frame dispatched', async () => {
  const restyler = restylerOf(1);
  const engine = engineWith(restyler, { budgetMs: 40 });
  engine.push(frame(1));
  await settle();
  engine.updateParams({ style: 'b', steps: 2 });
  engine.push(frame(2));
  await settle();
  assert.deepEqual(
    restyler.requests.map((r) => [r.style, r.steps]),
    [
      ['a', 1],
      ['b', 2],
    ],
  );
  // ...and the new style fades in: the first frame after the change conditions on a blend.
  assert.deepEqual(restyler.requests[1]!.styleBlend, { from: 'a', to: 'b', t: 1 / STYLE_TRANSITION_FRAMES });
  engine.close();
  assert.deepEqual(restyler.released, ['s']);
});

test('latency is accounted from arrival to first packet out, and late frames count as deadline misses', () => {
  const engine = engineWith(restylerOf(1), { budgetMs: 40 });
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
  const restyler = restylerOf(1);
  const out: VideoFrame[] = [];
  const engine = engineWith(restyler, { params: { ...params, similarityFilter: true }, onOutput: (f) => out.push(f) });
  for (let i = 0; i < 12; i++) {
    const f = frame(0);
    f.seq = i;
    engine.push(f);
    await settle();
    clock.advance(33);
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
  await settle();
  assert.equal(restyler.requests.length, 3);
  engine.close();
});

test('with the filter off, an unchanged input is restyled every frame', async () => {
  const restyler = restylerOf(1);
  const engine = engineWith(restyler);
  for (let i = 0; i < 4; i++) {
    engine.push(frame(0));
    await settle();
    clock.advance(33);
  }
  assert.equal(restyler.requests.length, 4);
  engine.close();
});

test('after a parameter change the previous output is never reused, even for an unchanged input', async () => {
  const restyler = restylerOf(1);
  const engine = engineWith(restyler, { params: { ...params, similarityFilter: true } });
  engine.push(frame(0));
  await settle();
  engine.push(frame(0));
  await settle();
  assert.equal(restyler.requests.length, 1, 'unchanged input reused');
  engine.updateParams({ style: 'b' });
  engine.push(frame(0));
  await settle();
  assert.equal(restyler.requests.length, 2);
  assert.equal(restyler.requests[1]!.style, 'b');
  engine.close();
});

test('a style change blends the two styles over STYLE_TRANSITION_FRAMES frames, then conditions on the new style alone', async () => {
  const restyler = restylerOf(0);
  const engine = engineWith(restyler);
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
  const restyler = restylerOf(0);
  (restyler.info as { conditioning: string }).conditioning = 'text';
  const engine = engineWith(restyler, { params: { ...params, prompt: 'a cat' } });
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
  const restyler = restylerOf(30); // every run costs 30 ms against a 20 ms budget
  const paths: string[] = [];
  const engine = engineWith(restyler, { budgetMs: 20, onOutput: (f) => paths.push(f.path!.kind) });
  // A still camera: each frame arrives gapMs after the last and is taken at once.
  const still = async (n: number, gapMs: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      engine.push(frame(0));
      await settle();
      clock.advance(gapMs);
    }
  };
  await still(1, 10); // the first run teaches the scheduler that a run does not fit
  // 10 ms apart, ten reuses fit before the scheduler probes the abandoned path again (after 250 ms): the frame
  // computed after ten reuses in a row is the reuse cap's doing. Then reuse resumes.
  await still(14, 10);
  const reuse = (n: number): string[] => new Array<string>(n).fill('reuse');
  assert.deepEqual(paths, ['model', ...reuse(10), 'model', ...reuse(3)]);
  // A style change must reach the screen frame by frame, not be frozen by reuse.
  const before = restyler.requests.length;
  const reusedBefore = engine.stats().reused;
  engine.updateParams({ style: 'b' });
  await still(9, 33);
  const fading = restyler.requests.slice(before).filter((r) => r.styleBlend);
  // The scheduler may still drop up to two frames in a row for the deadline, never reuse one.
  assert.equal(engine.stats().reused, reusedBefore, 'no frame of the fade is a reused one');
  assert.ok(fading.length >= 3, `fade frames computed: ${fading.length}`);
  engine.close();
});
