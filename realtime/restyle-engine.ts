// The per-stream engine: takes the newest decoded frame from ingress, runs it through the model runtime
// with the stream's live parameters, and hands the restyled frame to egress. It owns the stream's
// mailbox, parameters and latency accounting; the pixels' heavy lifting happens in models/ workers.
import type { Restyler } from '../models/restyle-types.js';
import { systemClock, type Clock } from '../frame/clock.js';
import { type VideoFrame, recordStage } from '../frame/video-frame.js';
import { LatestWinsMailbox } from './mailbox.js';
import { type ParamsPatch, type PromptPart, type SessionParams } from './params.js';
import type { StyleBlend } from '../models/conditioning.js';
import { DeadlineScheduler } from './deadline-scheduler.js';
import { MovingPercentiles, RateMeter } from './percentiles.js';
import { similarity, thumbnail } from './similarity.js';

/** The similarity filter reuses the previous output at or above this similarity... */
const FILTER_SIMILARITY = 0.97;
/** ...but never more than this many frames in a row, so the output still refreshes. */
const FILTER_MAX_REUSE = 10;
/**
 * A style or prompt change blends the two conditionings over this many frames instead of jumping
 * (~0.25 s at 30 fps).
 */
export const STYLE_TRANSITION_FRAMES = 8;

export interface RestyleEngineOptions {
  streamId: string;
  restyler: Restyler;
  params: SessionParams;
  /** Per-frame budget from arrival of the last packet to the first packet out, ms. */
  budgetMs: number;
  onOutput(frame: VideoFrame): void;
  /** A restyle failed; the engine keeps running and the next frame is tried. */
  onError?(error: Error): void;
  /** A waiting frame was replaced by a newer one (latest frame wins). */
  onDropped?(frame: VideoFrame): void;
  /** The time its deadline decisions, stage records and rates are read from (default: the system clock). */
  clock?: Clock;
}

export interface RestyleEngineStats {
  framesIn: number;
  framesOut: number;
  droppedFrames: number;
  deadlineMisses: number;
  errors: number;
  inputFps: number;
  outputFps: number;
  /** Arrival of the frame's last packet → its first restyled packet out. */
  latencyP50Ms: number;
  latencyP95Ms: number;
  latencyP99Ms: number;
  /** How frames were served: what the deadline scheduler and the similarity filter decided. */
  reused: number;
  fewerSteps: number;
  halfResolution: number;
  deadlineDrops: number;
}

export class RestyleEngine {
  private params: SessionParams;
  private readonly mailbox: LatestWinsMailbox<VideoFrame>;
  private readonly latency = new MovingPercentiles(300);
  private readonly inputRate = new RateMeter();
  private readonly outputRate = new RateMeter();
  private framesIn = 0;
  private framesOut = 0;
  private dropped = 0;
  private misses = 0;
  private errors = 0;
  private reused = 0;
  private fewerSteps = 0;
  private halfResolution = 0;
  private deadlineDrops = 0;
  private reusedInARow = 0;
  /** A style (style models) or prompt (text models) change in progress: frames dispatched so far towards `to`. */
  private transition: { from: string; to: string; frame: number } | undefined;
  private closed = false;
  private readonly scheduler: DeadlineScheduler;
  /** The last computed output and the thumbnail of the input it was made from. */
  private last: { inputThumb: Float32Array; image: VideoFrame['image'] } | undefined;

  private readonly clock: Clock;

  constructor(private readonly options: RestyleEngineOptions) {
    this.clock = options.clock ?? systemClock;
    this.params = { ...options.params };
    this.scheduler = new DeadlineScheduler({ budgetMs: options.budgetMs });
    this.mailbox = new LatestWinsMailbox(
      (frame) => this.process(frame),
      (frame) => {
        this.dropped++;
        this.options.onDropped?.(frame);
      },
    );
  }

  get currentParams(): SessionParams {
    return { ...this.params };
  }

  /** Apply a validated patch; it takes effect from the next frame dispatched. */
  updateParams(patch: ParamsPatch): SessionParams {
    const text = this.options.restyler.info.conditioning === 'text';
    const key = text ? 'prompt' : 'style';
    const from = this.transition ? this.onScreen() : this.params[key];
    this.params = { ...this.params, ...patch };
    // A new style (style models) or prompt (text models) blends in from what is on screen now. An
    // explicit prompt blend is the user's own mix: it applies as given.
    const to = patch[key];
    if (to !== undefined && to !== from && (text || from !== '') && !this.params.promptBlend) this.transition = { from, to, frame: 0 };
    // The previous output was made with the old parameters: never reuse it for a new look.
    this.last = undefined;
    return this.currentParams;
  }

  push(frame: VideoFrame): void {
    if (this.closed) return;
    this.framesIn++;
    this.inputRate.mark(this.clock.now());
    // The mailbox stage starts when the frame is offered; its end is stamped when the engine takes it.
    frame.stages.push({ name: 'mailbox', startMs: this.clock.now(), endMs: NaN });
    this.mailbox.put(frame);
  }

  /** Egress reports when a frame's first packet left: that closes the frame's latency account. */
  frameSent(frame: VideoFrame, sentMs: number): void {
    const latency = sentMs - frame.arrivalMs;
    this.latency.add(latency);
    if (latency > this.options.budgetMs) this.misses++;
    let egress = 0;
    for (const st of frame.stages) if (st.name === 'encode' || st.name === 'packetize') egress += st.endMs - st.startMs;
    this.scheduler.recordEgress(egress);
  }

  stats(): RestyleEngineStats {
    const now = this.clock.now();
    return {
      framesIn: this.framesIn,
      framesOut: this.framesOut,
      droppedFrames: this.dropped,
      deadlineMisses: this.misses,
      errors: this.errors,
      inputFps: this.inputRate.rate(now),
      outputFps: this.outputRate.rate(now),
      latencyP50Ms: this.latency.percentile(50),
      latencyP95Ms: this.latency.percentile(95),
      latencyP99Ms: this.latency.percentile(99),
      reused: this.reused,
      fewerSteps: this.fewerSteps,
      halfResolution: this.halfResolution,
      deadlineDrops: this.deadlineDrops,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.mailbox.close();
    this.options.restyler.releaseStream(this.options.streamId);
  }

  private async process(frame: VideoFrame): Promise<void> {
    const taken = this.clock.now();
    const mailboxStage = frame.stages.find((s) => s.name === 'mailbox' && Number.isNaN(s.endMs));
    if (mailboxStage) mailboxStage.endMs = taken;
    const p = this.params;
    const thumb = thumbnail(frame.image);
    const similar = this.last ? similarity(thumb, this.last.inputThumb) : undefined;

    // The similarity filter (a user switch): an unchanged input gets the previous output, refreshed
    // at least every FILTER_MAX_REUSE frames.
    if (p.similarityFilter && similar !== undefined && similar >= FILTER_SIMILARITY && this.reusedInARow < FILTER_MAX_REUSE) {
      return this.reuse(frame, taken);
    }
    // Under pressure the scheduler may resend the previous output for a similar input, but never for
    // long (a still camera under load would otherwise freeze the output, parameter changes included)
    // and not while a style or prompt change is fading in.
    const mayReuse = this.reusedInARow < FILTER_MAX_REUSE && !this.transition;
    const plan = this.scheduler.plan({
      arrivalMs: frame.arrivalMs,
      nowMs: taken,
      steps: p.steps,
      similarity: mayReuse ? similar : undefined,
    });
    if (plan.action === 'reuse') return this.reuse(frame, taken);
    if (plan.action === 'drop') {
      this.deadlineDrops++;
      this.dropped++;
      this.options.onDropped?.(frame);
      return;
    }
    if (plan.steps < p.steps) this.fewerSteps++;
    if (plan.scale !== 1) this.halfResolution++;
    try {
      const result = await this.options.restyler.restyle({
        streamId: this.options.streamId,
        image: frame.image,
        style: p.style,
        ...this.nextConditioning(p),
        prompt: p.prompt,
        strength: p.strength,
        steps: plan.steps,
        seed: p.seed,
        seedBlend: p.seedBlend ?? undefined,
        consistency: p.consistency,
        scale: plan.scale,
      });
      const returned = this.clock.now();
      let denoiseMs = 0;
      for (const st of result.stages) if (st.name === 'denoise') denoiseMs += st.endMs - st.startMs;
      this.scheduler.recordRun({ steps: plan.steps, scale: plan.scale, fixedMs: returned - taken - denoiseMs, denoiseMs, atMs: returned });
      if (this.closed) return;
      // Time not covered by the worker's own stages is transfer and scheduling overhead.
      const first = result.stages[0];
      const last = result.stages[result.stages.length - 1];
      recordStage(frame, 'dispatch', taken, first ? first.startMs : returned);
      frame.stages.push(...result.stages);
      if (last) recordStage(frame, 'dispatch', last.endMs, returned);
      frame.image = result.image;
      frame.path = { kind: 'model', steps: plan.steps, scale: plan.scale };
      this.last = { inputThumb: thumb, image: result.image };
      this.reusedInARow = 0;
      this.emit(frame, returned);
    } catch (error) {
      this.errors++;
      this.options.onError?.(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** What the next frame is conditioned on, advancing a style or prompt transition by one frame. */
  private nextConditioning(p: SessionParams): { styleBlend?: StyleBlend; promptBlend?: PromptPart[] } {
    const text = this.options.restyler.info.conditioning === 'text';
    const tr = this.transition;
    let t = 1;
    if (tr) {
      tr.frame++;
      t = tr.frame / STYLE_TRANSITION_FRAMES;
      if (tr.frame >= STYLE_TRANSITION_FRAMES) this.transition = undefined;
    }
    if (!text) return tr ? { styleBlend: { from: tr.from, to: tr.to, t } } : {};
    if (p.promptBlend) return { promptBlend: p.promptBlend };
    return {
      promptBlend: tr
        ? [
            { prompt: tr.from, weight: 1 - t },
            { prompt: tr.to, weight: t },
          ]
        : [{ prompt: p.prompt, weight: 1 }],
    };
  }

  /** The style or prompt the last dispatched frame was nearest to (where a new change starts from). */
  private onScreen(): string {
    const tr = this.transition!;
    return tr.frame * 2 >= STYLE_TRANSITION_FRAMES ? tr.to : tr.from;
  }

  private reuse(frame: VideoFrame, taken: number): void {
    // Egress only reads output pixels, so the previous output can be sent again as it is.
    frame.image = this.last!.image;
    frame.path = { kind: 'reuse' };
    this.reused++;
    this.reusedInARow++;
    const now = this.clock.now();
    recordStage(frame, 'reuse', taken, now);
    this.emit(frame, now);
  }

  private emit(frame: VideoFrame, atMs: number): void {
    this.framesOut++;
    this.outputRate.mark(atMs);
    this.options.onOutput(frame);
  }
}
