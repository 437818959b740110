// `sds bench consistency`: the temporal-consistency path alone (flow frame, flow both ways, masks,
// latent warp, image blend) as the inference worker runs it per frame, without the model, so its
// latency can be measured over many frames without the model's noise. The model's own output is
// stood in for by the input frame and a latent made from it; the cost does not depend on the values.
// Like the worker, it detaches no ArrayBuffer (that would slow every typed-array access in the
// process by 15-25 %; see realtime/worker/inference-worker.ts).
import type { RgbImage, StageTiming } from '../frame/video-frame.js';
import { LatentCache } from '../realtime/latent-cache.js';
import { loadPhoto } from './loopback-client.js';
import { latencyStats, type LatencyStats } from './model-bench.js';
import { makeMotionClip, type MotionKind } from './motion-clips.js';

export interface ConsistencyBenchOptions {
  photo: string;
  width: number;
  height: number;
  /** Image pixels per latent pixel (the VAE's reduction); the flow grid is twice as fine. */
  latentFactor: number;
  latentChannels: number;
  kinds: MotionKind[];
  /** Distinct frames per clip; the clip is played back and forth to reach `frames`. */
  clipFrames: number;
  frames: number;
  consistency: number;
}

export interface ConsistencyBenchRow {
  kind: MotionKind;
  flowMs: LatencyStats;
  warpMs: LatencyStats;
  addedMs: LatencyStats;
}

export async function runConsistencyBench(options: ConsistencyBenchOptions): Promise<ConsistencyBenchRow[]> {
  const photo = await loadPhoto(options.photo);
  const { width, height, latentFactor, latentChannels } = options;
  const dims = [1, latentChannels, height / latentFactor, width / latentFactor];
  const rows: ConsistencyBenchRow[] = [];
  for (const kind of options.kinds) {
    const clip = makeMotionClip(photo, undefined, { kind, width, height, frames: options.clipFrames });
    const latents = clip.frames.map((f) => latentOf(f, latentFactor, latentChannels));
    const cache = new LatentCache(latentFactor / 2);
    const flow: number[] = [];
    const warp: number[] = [];
    // Ten untimed frames first, as a running stream has compiled its loops.
    for (let n = 0; n < options.frames + 10; n++) {
      const t = pingPong(n, clip.frames.length);
      const frame = clip.frames[t]!;
      // As the worker: the input arrives as a fresh buffer (the cache copies the output it keeps).
      const out: RgbImage = { ...frame, data: frame.data.slice() };
      const stages: StageTiming[] = [];
      const gray = cache.flowFrame(out, stages);
      const guidance = cache.guide(gray, dims, options.consistency, stages);
      cache.blendImage(out, guidance, stages);
      cache.commit(gray, latents[t]!, dims, out);
      if (n < 10 || !guidance) continue;
      const sum = (name: StageTiming['name']): number => stages.filter((s) => s.name === name).reduce((a, s) => a + s.endMs - s.startMs, 0);
      flow.push(sum('flow'));
      warp.push(sum('warp'));
    }
    rows.push({ kind, flowMs: latencyStats(flow), warpMs: latencyStats(warp), addedMs: latencyStats(flow.map((f, i) => f + warp[i]!)) });
  }
  return rows;
}

/** 0, 1, …, n−1, n−2, …, 1, 0, 1, …: consecutive frames always move by one clip step. */
function pingPong(i: number, n: number): number {
  if (n < 2) return 0;
  const m = i % (2 * n - 2);
  return m < n ? m : 2 * n - 2 - m;
}

/** A stand-in latent: the frame's channels box-averaged to the latent grid, planar, a little scaled. */
function latentOf(frame: RgbImage, factor: number, channels: number): Float32Array {
  const w = frame.width / factor;
  const h = frame.height / factor;
  const out = new Float32Array(channels * w * h);
  for (let c = 0; c < channels; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        out[c * w * h + y * w + x] = (frame.data[3 * (y * factor * frame.width + x * factor) + (c % 3)]! - 128) / 64;
  return out;
}

export function formatConsistencyTable(rows: ConsistencyBenchRow[]): string {
  const f = (s: LatencyStats): string => `${s.median.toFixed(2).padStart(5)} / ${s.p95.toFixed(2).padStart(5)}`;
  const lines = ['motion         flow ms p50 / p95   warp ms p50 / p95   added ms p50 / p95   added max'];
  for (const r of rows)
    lines.push(
      `${r.kind.padEnd(15)}${f(r.flowMs).padEnd(20)}${f(r.warpMs).padEnd(20)}${f(r.addedMs).padEnd(21)}${r.addedMs.max.toFixed(2)}`,
    );
  return lines.join('\n');
}
