// Per-frame deadline scheduling. From moving percentiles of what the model path and egress cost right
// now, predict whether a frame can still meet arrival + budget and, when it cannot, degrade in a fixed,
// documented order: reuse the previous output (if the input is similar enough) → fewer steps → lower
// resolution (only where it is measured cheaper end to end) → drop. Nothing queues: a frame that cannot make it is never run late.
import { MovingPercentiles } from './percentiles.js';

export type FramePlan =
  | { action: 'run'; steps: number; scale: 1 | 0.5; reason: string }
  | { action: 'reuse'; reason: string }
  | { action: 'drop'; reason: string };

export interface PlanInput {
  arrivalMs: number;
  nowMs: number;
  /** Steps the user asked for. */
  steps: number;
  /** Similarity of this input to the one behind the last output (0..1); undefined if there is none. */
  similarity: number | undefined;
}

export interface RunCost {
  steps: number;
  scale: 1 | 0.5;
  /** Model-path time outside the denoiser (pre/post-processing, VAE, dispatch). */
  fixedMs: number;
  /** Total denoiser time for all steps. */
  denoiseMs: number;
  atMs: number;
}

export interface DeadlineSchedulerOptions {
  budgetMs: number;
  /** Under pressure, reuse the previous output when the input is at least this similar (default 0.9). */
  relaxedSimilarity?: number;
  /** An estimate not refreshed for this long is re-probed, so the engine recovers when load falls. */
  staleMs?: number;
  /**
   * A path given up for being over budget is probed again this soon (default 250 ms), then twice as late after each
   * probe that finds it still over budget, up to staleMs. A stream's first runs are slow (allocation, JIT) and used
   * to hold it at half resolution for a whole staleMs after it started.
   */
  firstProbeMs?: number;
}

/** Recent samples per path: short enough that a one-off stall (GC, a busy core) soon leaves it. */
const WINDOW = 30;
/** Predict with a high percentile, not the maximum, so one outlier does not degrade every frame. */
const PREDICT_PERCENTILE = 90;
/** Never drop more than this many frames in a row: run the cheapest path instead, and learn from it. */
const MAX_CONSECUTIVE_DROPS = 2;

class PathCost {
  readonly fixed = new MovingPercentiles(WINDOW);
  readonly step = new MovingPercentiles(WINDOW);
  lastMs = -Infinity;
  /** When a plan last passed this path over for its cost; undefined while it is in use. */
  abandonedAtMs: number | undefined;
  /** How long after abandonment it is probed again. */
  probeAfterMs: number;
  /** The last run on this path was a probe (it had been abandoned). */
  lastRunWasProbe = false;

  constructor(firstProbeMs: number) {
    this.probeAfterMs = firstProbeMs;
  }
}

export class DeadlineScheduler {
  private readonly costs: Record<'full' | 'half', PathCost>;
  private readonly egress = new MovingPercentiles(WINDOW);
  private consecutiveDrops = 0;
  private readonly relaxedSimilarity: number;
  private readonly staleMs: number;
  private readonly firstProbeMs: number;

  constructor(private readonly options: DeadlineSchedulerOptions) {
    this.relaxedSimilarity = options.relaxedSimilarity ?? 0.9;
    this.staleMs = options.staleMs ?? 2000;
    this.firstProbeMs = Math.min(options.firstProbeMs ?? 250, this.staleMs);
    this.costs = { full: new PathCost(this.firstProbeMs), half: new PathCost(this.firstProbeMs) };
  }

  recordRun(cost: RunCost): void {
    const path = cost.scale === 1 ? this.costs.full : this.costs.half;
    // A run on an abandoned path, or after a stale gap, is a probe: it replaces the old window instead of
    // joining it. Otherwise a path abandoned after a few slow runs (a start-up stall, a burst of load) would
    // keep those samples for WINDOW probes and stay degraded long after load fell.
    const probe = path.abandonedAtMs !== undefined || cost.atMs - path.lastMs > this.staleMs;
    if (probe) {
      path.fixed.clear();
      path.step.clear();
    } else {
      path.probeAfterMs = this.firstProbeMs; // in use again: the next abandonment starts probing early
    }
    path.lastRunWasProbe = path.abandonedAtMs !== undefined;
    path.abandonedAtMs = undefined;
    path.fixed.add(cost.fixedMs);
    path.step.add(cost.denoiseMs / Math.max(1, cost.steps));
    path.lastMs = cost.atMs;
  }

  /** Egress (encode + packetize) per frame, after the engine hands it over. */
  recordEgress(ms: number): void {
    this.egress.add(ms);
  }

  /** High-percentile prediction of the model path, or undefined when unknown or stale (then the path is probed). */
  predict(steps: number, scale: 1 | 0.5, nowMs: number, percentile = PREDICT_PERCENTILE): number | undefined {
    const path = scale === 1 ? this.costs.full : this.costs.half;
    if (path.fixed.count === 0 || nowMs - path.lastMs > this.staleMs) return undefined;
    if (path.abandonedAtMs !== undefined && nowMs - path.abandonedAtMs > path.probeAfterMs) return undefined;
    return path.fixed.percentile(percentile) + steps * path.step.percentile(percentile);
  }

  plan(input: PlanInput): FramePlan {
    const plan = this.choose(input);
    this.consecutiveDrops = plan.action === 'drop' ? this.consecutiveDrops + 1 : 0;
    // A path with a known cost that this plan degraded past is abandoned until its probe: full resolution when
    // the frame is not run at full resolution, half resolution when it is dropped. A probe that found it still
    // too slow doubles the wait before the next one.
    const passedOver = [
      [1, this.costs.full, !(plan.action === 'run' && plan.scale === 1)],
      [0.5, this.costs.half, plan.action === 'drop'],
    ] as const;
    for (const [scale, path, over] of passedOver) {
      if (!over || path.abandonedAtMs !== undefined || this.predict(1, scale, input.nowMs) === undefined) continue;
      path.abandonedAtMs = input.nowMs;
      if (path.lastRunWasProbe) path.probeAfterMs = Math.min(2 * path.probeAfterMs, this.staleMs);
    }
    return plan;
  }

  private choose(input: PlanInput): FramePlan {
    const egress = this.egress.count > 0 ? this.egress.percentile(PREDICT_PERCENTILE) : 0;
    const remaining = input.arrivalMs + this.options.budgetMs - input.nowMs - egress;
    const fits = (steps: number, scale: 1 | 0.5, percentile = PREDICT_PERCENTILE): boolean => {
      const predicted = this.predict(steps, scale, input.nowMs, percentile);
      return predicted === undefined ? remaining > 0 : predicted <= remaining;
    };
    if (fits(input.steps, 1)) return { action: 'run', steps: input.steps, scale: 1, reason: 'on time' };
    if (input.similarity !== undefined && input.similarity >= this.relaxedSimilarity) {
      return { action: 'reuse', reason: `over budget; input ${(input.similarity * 100).toFixed(0)}% similar` };
    }
    for (let steps = input.steps - 1; steps >= 1; steps--) {
      if (fits(steps, 1)) return { action: 'run', steps, scale: 1, reason: `over budget at ${input.steps} steps` };
    }
    // Half resolution is a rung down only where it is cheaper end to end: its measured cost is the whole model
    // path (dispatch, VAE, denoise and the host upscale back to the stream's size), compared at the median with
    // full resolution at 1 step. On 2 cores at 512² its upscale used to make it the slower path, taken anyway.
    const half = this.predict(1, 0.5, input.nowMs, 50);
    const full = this.predict(1, 1, input.nowMs, 50);
    const halfCheaper = half === undefined || full === undefined || half < full;
    const cheapest = halfCheaper ? ({ steps: 1, scale: 0.5 } as const) : ({ steps: 1, scale: 1 } as const);
    // Degrading is cheap to undo, dropping is not: degrade on the high percentile, but drop only when
    // even the cheapest path's typical (median) cost cannot make it.
    if (fits(cheapest.steps, cheapest.scale, 50)) {
      const reason = halfCheaper ? 'over budget at full resolution' : 'over budget; half resolution is no cheaper end to end';
      return { action: 'run', ...cheapest, reason };
    }
    if (this.consecutiveDrops >= MAX_CONSECUTIVE_DROPS) {
      return { action: 'run', ...cheapest, reason: 'late, but output must not starve' };
    }
    return { action: 'drop', reason: `cannot meet the deadline (${remaining.toFixed(1)} ms left)` };
  }
}
