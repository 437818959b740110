// `sds bench batch`: would batching frames of several streams into one model run help? Runs each ONNX
// component of the model at batch 1 and batch N (the same session options the server uses, on this
// thread) and reports the cost per frame. The server runs batch 1 (see README "Many streams"); this is
// the measurement behind that choice, to repeat on other hardware (a GPU batches far better than a CPU).
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { loadManifest } from '../models/manifest.js';
import { OnnxComponent, type TensorSpec } from '../models/onnx-component.js';
import type { ExecutionProvider } from '../models/restyle-types.js';
import { latencyStats, type LatencyStats } from './model-bench.js';

export interface BatchBenchOptions {
  modelDir: string;
  provider?: ExecutionProvider;
  batches: number[];
  iterations: number;
  intraOpThreads?: number;
}

export interface BatchBenchRow {
  component: string;
  batch: number;
  /** One run of the whole batch. */
  run: LatencyStats;
  /** run.median / batch. */
  perFrameMs: number;
  /** Per-frame cost at batch 1 ÷ per-frame cost at this batch (> 1: batching helps). */
  speedup: number;
}

/** Concrete dims for an input: symbolic axes named like diffusers/optimum exports name them. */
function dimsFor(spec: TensorSpec, batch: number, width: number, height: number, downscale: number): number[] {
  const named: Record<string, number> = {
    batch,
    batch_size: batch,
    height,
    width,
    latent_height: height / downscale,
    latent_width: width / downscale,
  };
  return spec.shape.map((d, axis) => {
    if (typeof d === 'number' && d > 0) return d;
    if (typeof d === 'string' && named[d] !== undefined) return named[d]!;
    if (axis === 0) return batch;
    throw new Error(`${spec.name}: cannot size axis ${axis} (${String(d)})`);
  });
}

export async function runBatchBench(options: BatchBenchOptions): Promise<BatchBenchRow[]> {
  const manifest = loadManifest(options.modelDir);
  const { width, height } = manifest.resolution;
  const rows: BatchBenchRow[] = [];
  for (const [name, file] of [
    ['vae_encoder', manifest.components.vae_encoder],
    ['denoiser', manifest.components.denoiser],
    ['vae_decoder', manifest.components.vae_decoder],
  ] as const) {
    const component = await OnnxComponent.load(file, {
      provider: options.provider ?? 'cpu',
      fallbackToCpu: true,
      intraOpThreads: options.intraOpThreads ?? os.availableParallelism(),
    });
    try {
      let base = NaN;
      for (const batch of options.batches) {
        const feeds: Record<string, ort.Tensor> = {};
        for (const spec of component.inputs) {
          const dims = dimsFor(spec, batch, width, height, manifest.latent.downscale);
          const size = dims.reduce((a, b) => a * b, 1);
          if (spec.type !== 'float32') throw new Error(`${spec.name}: batch bench supports float32 inputs, got ${spec.type}`);
          feeds[spec.name] = new ort.Tensor(
            'float32',
            Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37)),
            dims,
          );
        }
        for (let i = 0; i < 3; i++) await component.run(feeds, component.outputs);
        const samples: number[] = [];
        for (let i = 0; i < options.iterations; i++) {
          const start = performance.now();
          await component.run(feeds, component.outputs);
          samples.push(performance.now() - start);
        }
        const run = latencyStats(samples);
        const perFrameMs = run.median / batch;
        if (batch === 1) base = perFrameMs;
        rows.push({ component: name, batch, run, perFrameMs, speedup: base / perFrameMs });
      }
    } finally {
      await component.release();
    }
  }
  return rows;
}

export function formatBatchTable(rows: BatchBenchRow[]): string {
  const lines = ['| component | batch | run ms p50 / p95 | per frame ms | speedup vs batch 1 |', '|---|---|---|---|---|'];
  for (const r of rows)
    lines.push(
      `| ${r.component} | ${r.batch} | ${r.run.median.toFixed(2)} / ${r.run.p95.toFixed(2)} | ${r.perFrameMs.toFixed(2)} | ${r.speedup.toFixed(2)}× |`,
    );
  return lines.join('\n');
}
