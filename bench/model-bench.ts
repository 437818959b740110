// Model benchmark (`sds bench model`): per-component latency of the img2img pipeline at the model's
// native resolution and 512×512. It runs through ModelRuntime — the same worker thread, sessions and
// pipeline code the server uses — and reads the stage timings the worker records for each frame.
import { writeFileSync } from 'node:fs';
import type { StageName } from '../frame/video-frame.js';
import { ModelRuntime } from '../realtime/model-runtime.js';
import type { ExecutionProvider, RestyleRequest } from '../models/restyle-types.js';

export interface ModelBenchOptions {
  modelDir: string;
  provider?: ExecutionProvider;
  /** When the provider cannot load the model: use the CPU (default, reported as provider cpu) or fail. */
  fallbackToCpu?: boolean;
  /** [width, height] pairs; default: the model's native resolution and 512×512. */
  resolutions?: [number, number][];
  steps?: number;
  iterations?: number;
  warmup?: number;
  intraOpThreads?: number;
  /** false: the host converts pixels (the path before pixel graphs), to measure both in one run. */
  pixelGraphs?: boolean;
  /** Write the JSON report here. */
  out?: string;
  /** Print the table (default true). */
  print?: boolean;
}

export interface LatencyStats {
  median: number;
  p95: number;
  mean: number;
  min: number;
  max: number;
}

export interface ModelBenchRow {
  width: number;
  height: number;
  steps: number;
  iterations: number;
  /** Milliseconds. denoise_step = denoise / steps; total = restyle() round trip from the main thread. */
  stages: Record<'preprocess' | 'vae_encode' | 'denoise' | 'denoise_step' | 'vae_decode' | 'postprocess' | 'host' | 'total', LatencyStats>;
  fps: number;
}

export interface ModelBenchReport {
  model: string;
  provider: ExecutionProvider;
  intraOpThreads: number | 'default';
  runner: string;
  date: string;
  rows: ModelBenchRow[];
}

export function latencyStats(samples: number[]): LatencyStats {
  const s = [...samples].sort((a, b) => a - b);
  const rank = (q: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
  const median = s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return { median, p95: rank(0.95), mean: s.reduce((a, b) => a + b, 0) / s.length, min: s[0]!, max: s[s.length - 1]! };
}

export async function runModelBench(options: ModelBenchOptions): Promise<ModelBenchReport> {
  const steps = options.steps ?? 1;
  const iterations = Math.max(1, options.iterations ?? 50);
  const warmup = Math.max(0, options.warmup ?? 5);
  const runtime = await ModelRuntime.load({
    modelDir: options.modelDir,
    provider: options.provider ?? 'cpu',
    fallbackToCpu: options.fallbackToCpu ?? true,
    workers: 1,
    intraOpThreads: options.intraOpThreads,
    pixelGraphs: options.pixelGraphs ?? true,
  });
  try {
    const { info } = runtime;
    const resolutions =
      options.resolutions ??
      dedupe([
        [info.width, info.height],
        [512, 512],
      ]);
    const rows: ModelBenchRow[] = [];
    for (const [width, height] of resolutions) {
      const samples = new Map<string, number[]>();
      const add = (k: string, v: number): void => void (samples.get(k) ?? samples.set(k, []).get(k)!).push(v);
      for (let i = 0; i < warmup + iterations; i++) {
        const request = frame(info.defaults, width, height, steps, i);
        const t0 = performance.now();
        const { stages } = await runtime.restyle(request);
        const total = performance.now() - t0;
        if (i < warmup) continue;
        let model = 0;
        for (const s of stages) {
          add(s.name, s.endMs - s.startMs);
          if (s.name === 'denoise') add('denoise_step', (s.endMs - s.startMs) / steps);
          if (s.name === 'vae_encode' || s.name === 'denoise' || s.name === 'vae_decode') model += s.endMs - s.startMs;
        }
        add('total', total);
        // Everything but the model's runs: pixel conversions (none where the VAE runs in pixel graphs), the thread hop, copies.
        add('host', total - model);
      }
      // A stage that never ran (pre/postprocess inside pixel graphs) took no time.
      const stat = (k: StageName | 'denoise_step' | 'total' | 'host'): LatencyStats =>
        latencyStats(samples.get(k) ?? [k === 'preprocess' || k === 'postprocess' ? 0 : NaN]);
      const totals = stat('total');
      rows.push({
        width,
        height,
        steps,
        iterations,
        stages: {
          preprocess: stat('preprocess'),
          vae_encode: stat('vae_encode'),
          denoise: stat('denoise'),
          denoise_step: stat('denoise_step'),
          vae_decode: stat('vae_decode'),
          postprocess: stat('postprocess'),
          host: stat('host'),
          total: totals,
        },
        fps: 1000 / totals.median,
      });
    }
    const report: ModelBenchReport = {
      model: info.name,
      provider: info.provider,
      intraOpThreads: options.intraOpThreads ?? 'default',
      runner: `ModelRuntime (1 worker thread), pixels ${options.pixelGraphs === false ? 'converted on the host' : 'in graphs where the model allows'}`,
      date: new Date().toISOString(),
      rows,
    };
    if (options.print ?? true) process.stdout.write(formatTable(report));
    if (options.out) writeFileSync(options.out, JSON.stringify(report, null, 2) + '\n');
    return report;
  } finally {
    await runtime.close();
  }
}

function frame(defaults: { style: string; strength: number }, width: number, height: number, steps: number, i: number): RestyleRequest {
  // A moving gradient, so no stage can take a shortcut on a constant image.
  const data = new Uint8Array(width * height * 3);
  for (let y = 0, p = 0; y < height; y++)
    for (let x = 0; x < width; x++, p += 3) {
      data[p] = (x + i) & 0xff;
      data[p + 1] = (y * 2) & 0xff;
      data[p + 2] = (x ^ y) & 0xff;
    }
  return {
    streamId: 'bench',
    image: { width, height, data },
    style: defaults.style,
    prompt: '',
    strength: defaults.strength,
    steps,
    seed: 1,
    consistency: 0,
  };
}

function dedupe(list: [number, number][]): [number, number][] {
  return list.filter(([w, h], i) => list.findIndex(([w2, h2]) => w2 === w && h2 === h) === i);
}

export function formatTable(report: ModelBenchReport): string {
  const cols = ['preprocess', 'vae_encode', 'denoise_step', 'denoise', 'vae_decode', 'postprocess', 'host', 'total'] as const;
  const lines = [
    `model ${report.model} · times in ms · provider ${report.provider} · intra-op threads ${report.intraOpThreads} · ${report.runner}`,
    `${'resolution'.padEnd(12)}${'steps'.padStart(6)}  ${cols.map((c) => `${c} p50/p95`.padStart(22)).join('')}${'fps'.padStart(8)}`,
  ];
  for (const r of report.rows) {
    const cells = cols.map((c) => `${r.stages[c].median.toFixed(2)} / ${r.stages[c].p95.toFixed(2)}`.padStart(22)).join('');
    lines.push(`${`${r.width}×${r.height}`.padEnd(12)}${String(r.steps).padStart(6)}  ${cells}${r.fps.toFixed(1).padStart(8)}`);
  }
  return lines.join('\n') + '\n';
}
