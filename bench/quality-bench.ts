// `sds bench quality`: does temporal consistency work, and what does it cost? Runs clips (made from a
// real photo with known camera motion and a moving occluder, a static scene with camera noise, or a
// .y4m file) through the model runtime at several `consistency` values and reports, per clip:
//  - warp error (Lai et al. 2018): output t warped into t+1 by OpenCV's flow of the *input* video,
//    mean absolute difference on 0–255 over pixels that pass the forward–backward check;
//  - flicker index (static clip): output frame-to-frame change ÷ the input's;
//  - style fidelity: PSNR to the style's target seen through the same camera (so "change nothing"
//    cannot win);
//  - the added latency of flow and warping, and each frame's total model time.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { RgbImage, StageTiming } from '../frame/video-frame.js';
import { ModelRuntime } from '../realtime/model-runtime.js';
import type { ExecutionProvider } from '../models/restyle-types.js';
import { grayFromRgb } from '../realtime/optical-flow.js';
import { DEFAULT_MODEL_DIR, PACKAGE_ROOT } from '../server/config.js';
import { loadPhoto } from './loopback-client.js';
import { latencyStats, type LatencyStats } from './model-bench.js';
import { makeMotionClip, type MotionKind } from './motion-clips.js';
import { similarity, thumbnail } from '../realtime/similarity.js';
import { referenceFlows, type ReferenceFlowMethod } from './reference-flow.js';
import { flickerIndex, meanFrameChange, meanPsnr, warpError } from './temporal-metrics.js';
import { readY4m } from './y4m-reader.js';

export interface QualityClip {
  name: string;
  frames: RgbImage[];
  targets?: RgbImage[];
  /** A static scene: report the flicker index. */
  static: boolean;
}

export interface QualityBenchOptions {
  modelDir: string;
  provider?: ExecutionProvider;
  clips: QualityClip[];
  consistency: number[];
  style?: string;
  steps?: number;
  strength?: number;
  seed?: number;
  referenceFlow?: ReferenceFlowMethod;
}

export interface QualityRow {
  clip: string;
  consistency: number;
  /** Mean warp error of the output (0–255). */
  warpError: number;
  /** The same metric on the input video: the floor set by the reference flow and interpolation. */
  inputWarpError: number;
  /** Static clips: output change ÷ input change. */
  flickerIndex?: number;
  outputChange: number;
  inputChange: number;
  /** Mean PSNR (dB) to the style target, when the clip has targets. */
  fidelityDb?: number;
  flowMs: LatencyStats;
  warpMs: LatencyStats;
  /** Flow + warping per frame: what consistency adds to a frame's latency. */
  addedMs: LatencyStats;
  /** The similarity filter's own cost per frame (thumbnail + comparison, on the main thread). */
  filterMs: LatencyStats;
  /** Whole restyle() per frame, main thread round trip. */
  totalMs: LatencyStats;
  firstFrameMs: number;
}

export interface QualityReport {
  model: string;
  provider: ExecutionProvider;
  style: string;
  steps: number;
  strength: number;
  referenceFlow: string;
  date: string;
  rows: QualityRow[];
}

export async function runQualityBench(options: QualityBenchOptions, log: (line: string) => void = () => undefined): Promise<QualityReport> {
  const runtime = await ModelRuntime.load({ modelDir: options.modelDir, provider: options.provider ?? 'cpu', workers: 1 });
  const d = runtime.info.defaults;
  const style = options.style ?? d.style;
  const steps = options.steps ?? d.steps;
  const strength = options.strength ?? d.strength;
  const refMethod = options.referenceFlow ?? 'dis-medium';
  const rows: QualityRow[] = [];
  let refInfo = '';
  try {
    let streamNo = 0;
    // Warm-up: a real stream's first second compiles the worker's flow and warp loops; run that
    // second here (10 frames, discarded) so the timings below are a running stream's, not the JIT's.
    const warm = options.clips[0]!.frames;
    for (let i = 0; i < 10; i++) {
      const frame = warm[i % warm.length]!;
      await runtime.restyle({
        streamId: 'warm-up',
        image: { ...frame, data: frame.data.slice() },
        style,
        prompt: '',
        strength,
        steps,
        seed: 1,
        consistency: 1,
      });
    }
    runtime.releaseStream('warm-up');
    for (const clip of options.clips) {
      const { width, height } = runtime.info;
      for (const f of clip.frames)
        if (f.width !== width || f.height !== height) throw new Error(`clip ${clip.name}: frames must be ${width}×${height}`);
      const ref = await referenceFlows(
        clip.frames.map((f) => grayFromRgb(f, 1)),
        refMethod,
      );
      refInfo = `OpenCV ${ref.opencv} ${refMethod} on the input frames at ${width}×${height}; occlusion by the forward–backward rule |f+b|² > 0.01(|f|²+|b|²) + 0.5`;
      const inputWarpError = warpError(clip.frames, ref.forward, ref.backward);
      for (const consistency of options.consistency) {
        const streamId = `quality-${streamNo++}`;
        const outputs: RgbImage[] = [];
        const flow: number[] = [];
        const warp: number[] = [];
        const added: number[] = [];
        const filter: number[] = [];
        let lastThumb: Float32Array | undefined;
        const total: number[] = [];
        for (const frame of clip.frames) {
          const filterStart = performance.now();
          const thumb = thumbnail(frame);
          if (lastThumb) similarity(thumb, lastThumb);
          lastThumb = thumb;
          filter.push(performance.now() - filterStart);
          const start = performance.now();
          const result = await runtime.restyle({
            streamId,
            image: { ...frame, data: frame.data.slice() },
            style,
            prompt: '',
            strength,
            steps,
            seed: options.seed ?? 42,
            consistency,
          });
          total.push(performance.now() - start);
          outputs.push(result.image);
          const sum = (name: StageTiming['name']): number =>
            result.stages.filter((s) => s.name === name).reduce((a, s) => a + s.endMs - s.startMs, 0);
          if (consistency > 0) {
            flow.push(sum('flow'));
            warp.push(sum('warp'));
            added.push(sum('flow') + sum('warp'));
          }
        }
        runtime.releaseStream(streamId);
        const row: QualityRow = {
          clip: clip.name,
          consistency,
          warpError: warpError(outputs, ref.forward, ref.backward),
          inputWarpError,
          outputChange: meanFrameChange(outputs),
          inputChange: meanFrameChange(clip.frames),
          flowMs: latencyStats(flow.length ? flow : [0]),
          warpMs: latencyStats(warp.length ? warp : [0]),
          addedMs: latencyStats(added.length ? added : [0]),
          filterMs: latencyStats(filter.slice(1)),
          totalMs: latencyStats(total.slice(1)),
          firstFrameMs: total[0]!,
        };
        if (clip.static) row.flickerIndex = flickerIndex(clip.frames, outputs);
        if (clip.targets) row.fidelityDb = meanPsnr(outputs, clip.targets);
        rows.push(row);
        log(formatRow(row));
      }
    }
  } finally {
    await runtime.close();
  }
  return {
    model: runtime.info.name,
    provider: runtime.info.provider,
    style,
    steps,
    strength,
    referenceFlow: refInfo,
    date: new Date().toISOString(),
    rows,
  };
}

const HEADER =
  '| clip | consistency | warp error | vs c=0 | flicker index | fidelity dB | flow ms p50/p95 | warp ms p50/p95 | added ms p50/p95 | filter ms p50/p95 | frame ms p50/p95 | first frame ms |';

function formatRow(r: QualityRow, base?: QualityRow): string {
  const f = (n: number | undefined, digits = 2): string => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits));
  const ratio = base && base !== r ? `${((r.warpError / base.warpError - 1) * 100).toFixed(0)} %` : '–';
  return `| ${r.clip} | ${r.consistency} | ${f(r.warpError)} | ${ratio} | ${f(r.flickerIndex, 3)} | ${f(r.fidelityDb)} | ${f(r.flowMs.median)} / ${f(r.flowMs.p95)} | ${f(r.warpMs.median)} / ${f(r.warpMs.p95)} | ${f(r.addedMs.median)} / ${f(r.addedMs.p95)} | ${f(r.filterMs.median)} / ${f(r.filterMs.p95)} | ${f(r.totalMs.median)} / ${f(r.totalMs.p95)} | ${f(r.firstFrameMs, 1)} |`;
}

export function renderQualityMarkdown(report: QualityReport): string {
  const lines = [
    `# Temporal quality: ${report.model}, style ${report.style}, ${report.steps} step(s), strength ${report.strength}, ${report.provider}`,
    '',
    `Warp error: mean |out(t+1) − warp(out(t))| on 0–255 over RGB and visible pixels; flow: ${report.referenceFlow}.`,
    'Flicker index (static clips): output frame-to-frame change ÷ input frame-to-frame change. Fidelity: mean PSNR to the style target.',
    "Added ms: flow + warping per frame (consistency > 0). Filter ms: the similarity filter's thumbnail and comparison. First frame: a new stream's first restyle() round trip.",
    '',
    HEADER,
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of report.rows)
    lines.push(
      formatRow(
        r,
        report.rows.find((b) => b.clip === r.clip && b.consistency === 0),
      ),
    );
  lines.push(
    '',
    `Input warp error (the floor of the metric with this flow): ${[...new Set(report.rows.map((r) => `${r.clip} ${r.inputWarpError.toFixed(2)}`))].join(', ')}.`,
  );
  return lines.join('\n') + '\n';
}

const HELP = `sds bench quality — temporal consistency: warp error, flicker, style fidelity, added latency

  sds bench quality [--clip pan|zoom|rotate|occluder|static-noise|FILE.y4m ...] [--frames N]
                    [--consistency 0,0.5,1] [--style ID] [--steps N] [--strength S] [--seed N]
                    [--model DIR] [--provider cpu|cuda|webgpu] [--reference dis-medium|farneback]
                    [--out DIR]
  Default clips: occluder (camera pan + a moving object) and static-noise, 30 frames, made from the
  model's held-out photo and its style target. Needs Debian's python3-opencv for the reference flow.
`;

export async function runQualityBenchCli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      clip: { type: 'string', multiple: true },
      frames: { type: 'string' },
      consistency: { type: 'string' },
      style: { type: 'string' },
      steps: { type: 'string' },
      strength: { type: 'string' },
      seed: { type: 'string' },
      model: { type: 'string' },
      provider: { type: 'string' },
      reference: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const modelDir = path.resolve(values.model ?? DEFAULT_MODEL_DIR);
  const probe = await ModelRuntime.load({ modelDir, workers: 1 }).then(async (r) => {
    const info = r.info;
    await r.close();
    return info;
  });
  const style = values.style ?? probe.defaults.style;
  const frames = values.frames ? Number(values.frames) : 30;
  const photo = await loadPhoto(path.join(modelDir, 'testdata', 'heldout.png')).catch(() =>
    loadPhoto(path.join(DEFAULT_MODEL_DIR, 'testdata', 'heldout.png')),
  );
  const target = await loadPhoto(path.join(modelDir, 'testdata', 'targets', `${style}.png`)).catch(() => undefined);
  const clips: QualityClip[] = [];
  for (const name of values.clip ?? ['occluder', 'static-noise']) {
    if (name.endsWith('.y4m')) {
      clips.push({ name: path.basename(name), frames: (await readY4m(name, probe.width, probe.height)).slice(0, frames), static: false });
      continue;
    }
    const clip = makeMotionClip(photo, target, { kind: name as MotionKind, width: probe.width, height: probe.height, frames });
    clips.push({ name, frames: clip.frames, targets: clip.targets, static: name === 'static-noise' });
  }
  const report = await runQualityBench(
    {
      modelDir,
      provider: (values.provider ?? 'cpu') as ExecutionProvider,
      clips,
      consistency: (values.consistency ?? '0,0.5,1').split(',').map(Number),
      style,
      steps: values.steps ? Number(values.steps) : undefined,
      strength: values.strength ? Number(values.strength) : undefined,
      seed: values.seed ? Number(values.seed) : undefined,
      referenceFlow: values.reference as ReferenceFlowMethod | undefined,
    },
    (line) => process.stderr.write(line + '\n'),
  );
  const md = renderQualityMarkdown(report);
  process.stdout.write(md);
  const outDir = values.out ?? path.join(PACKAGE_ROOT, 'bench', 'out', `quality-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, 'quality.json'), JSON.stringify(report, null, 2));
  writeFileSync(path.join(outDir, 'quality.md'), md);
  process.stdout.write(`\nreports: ${outDir}/quality.{json,md}\n`);
  return 0;
}
