// `sds bench flow`: accuracy and cost of the engine's optical flow on clips with known motion made
// from a real photo (pan, zoom, rotation, a moving occluder, a static scene with camera noise), next
// to OpenCV's DIS and Farneback on the same frames. End-point error is measured on the flow grid the
// engine uses (model resolution / 4, twice the latent grid) over pixels still visible in the next frame.
import { loadPhoto } from './loopback-client.js';
import { MOTION_KINDS, makeMotionClip, type MotionKind } from './motion-clips.js';
import { downsampleFlow, downsamplePlane, endPointError, validityMask } from '../realtime/flow-warp.js';
import { FlowEstimator, grayFromRgb, type FlowField, type FlowFrame } from '../realtime/optical-flow.js';
import { latencyStats, type LatencyStats } from './model-bench.js';
import { nowMs } from '../frame/clock.js';
import { referenceFlows, type ReferenceFlowMethod } from './reference-flow.js';

export interface FlowBenchOptions {
  photo: string;
  width: number;
  height: number;
  /** Flow grid = model resolution / gridFactor (4: twice the latent grid of an 8× VAE). */
  gridFactor: number;
  frames: number;
  kinds?: MotionKind[];
  /** OpenCV methods to compare against (skipped with a note when python3-opencv is missing). */
  references?: ReferenceFlowMethod[];
}

export interface FlowBenchRow {
  method: string;
  kind: MotionKind;
  /** Mean end-point error over visible pixels, in flow-grid pixels. */
  epe: number;
  /**
   * Ours: what a stream pays per frame for flow, as LatentCache runs it: the new frame's pyramid, forward and
   * backward flow and the validity mask, in reused buffers. OpenCV: one flow (its own timer).
   */
  costMs: LatencyStats | { median: number };
}

export async function runFlowBench(options: FlowBenchOptions, log: (line: string) => void = () => undefined): Promise<FlowBenchRow[]> {
  const photo = await loadPhoto(options.photo);
  const rows: FlowBenchRow[] = [];
  for (const kind of options.kinds ?? MOTION_KINDS) {
    const clip = makeMotionClip(photo, undefined, { kind, width: options.width, height: options.height, frames: options.frames });
    const grays = clip.frames.map((f) => grayFromRgb(f, options.gridFactor));
    const gw = grays[0]!.width;
    const gh = grays[0]!.height;
    const truth = clip.flows.map((f) => downsampleFlow(f, gw, gh));
    const visible = clip.visible.map((v) =>
      downsamplePlane(v, options.width, options.height, options.gridFactor).map((x) => (x === 1 ? 1 : 0)),
    );
    const meanEpe = (flows: FlowField[]): number =>
      flows.reduce((s, f, t) => s + endPointError(f, truth[t]!, visible[t]), 0) / flows.length;

    // As a stream: each frame's pyramid is built once (frame t in slot t mod 2), and the flows and the
    // mask go into the same buffers every frame.
    const estimator = new FlowEstimator();
    const field = (): FlowField => ({ width: gw, height: gh, data: new Float32Array(gw * gh * 2) });
    const forward = field();
    const backward = field();
    const mask = new Float32Array(gw * gh);
    const slots: Array<FlowFrame | undefined> = [undefined, undefined];
    const prepare = (t: number): FlowFrame => (slots[t % 2] = estimator.prepare(grays[t]!, slots[t % 2]));
    const pair = (t: number): void => {
      const prev = slots[t % 2]!;
      const next = prepare(t + 1);
      estimator.estimate(next, prev, backward);
      estimator.estimate(prev, next, forward);
      validityMask(grays[t + 1]!, grays[t]!, backward, forward, mask);
    };
    // Untimed passes so the JIT has compiled the loops before the timed ones (as a running stream has).
    for (let i = 0; i < 10; i++) {
      const t = i % (grays.length - 1);
      if (t === 0) prepare(0);
      pair(t);
    }
    const costs: number[] = [];
    const ours: FlowField[] = [];
    prepare(0);
    for (let t = 0; t + 1 < grays.length; t++) {
      const start = nowMs();
      pair(t);
      costs.push(nowMs() - start);
      ours.push({ ...forward, data: forward.data.slice() });
    }
    rows.push({ method: 'sds dis', kind, epe: meanEpe(ours), costMs: latencyStats(costs) });
    for (const method of options.references ?? []) {
      try {
        const ref = await referenceFlows(grays, method);
        rows.push({ method: `opencv ${method}`, kind, epe: meanEpe(ref.forward), costMs: { median: ref.medianMs } });
      } catch (err) {
        log(`skipping opencv ${method}: ${(err as Error).message}`);
      }
    }
  }
  return rows;
}

export function formatFlowTable(rows: FlowBenchRow[]): string {
  const lines = ['method                 motion         EPE (grid px)   cost ms median / p95'];
  for (const r of rows) {
    const p95 = 'p95' in r.costMs ? ` / ${r.costMs.p95.toFixed(2)}` : ' (one direction)';
    lines.push(
      `${r.method.padEnd(23)}${r.kind.padEnd(15)}${r.epe.toFixed(3).padStart(13)}   ${r.costMs.median.toFixed(2).padStart(6)}${p95}`,
    );
  }
  return lines.join('\n');
}
