// The per-stream engine: takes the newest decoded frame from ingress, runs it through the model runtime
// with the stream's live parameters, and hands the restyled frame to egress. It owns the stream's
// mailbox, parameters and latency accounting; the pixels' heavy lifting happens in models/ workers.
import type { Restyler } from '../models/restyle-types.js';
import { nowMs } from './clock.js';
import { type VideoFrame, recordStage } from './frame.js';
import { LatestWinsMailbox } from './mailbox.js';
import { type ParamsPatch, type SessionParams } from './params.js';
import { MovingPercentiles, RateMeter } from './percentiles.js';

export interface StreamEngineOptions {
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
}

export interface StreamEngineStats {
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
}

export class StreamEngine {
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
  private closed = false;

  constructor(private readonly options: StreamEngineOptions) {
    this.params = { ...options.params };
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
    this.params = { ...this.params, ...patch };
    return this.currentParams;
  }

  push(frame: VideoFrame): void {
    if (this.closed) return;
    this.framesIn++;
    this.inputRate.mark(nowMs());
    // The mailbox stage starts when the frame is offered; its end is stamped when the engine takes it.
    frame.stages.push({ name: 'mailbox', startMs: nowMs(), endMs: NaN });
    this.mailbox.put(frame);
  }

  /** Egress reports when a frame's first packet left: that closes the frame's latency account. */
  frameSent(frame: VideoFrame, sentMs: number): void {
    const latency = sentMs - frame.arrivalMs;
    this.latency.add(latency);
    if (latency > this.options.budgetMs) this.misses++;
  }

  stats(): StreamEngineStats {
    const now = nowMs();
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
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.mailbox.close();
    this.options.restyler.releaseStream(this.options.streamId);
  }

  private async process(frame: VideoFrame): Promise<void> {
    const taken = nowMs();
    const mailboxStage = frame.stages.find((s) => s.name === 'mailbox' && Number.isNaN(s.endMs));
    if (mailboxStage) mailboxStage.endMs = taken;
    const p = this.params;
    try {
      const result = await this.options.restyler.restyle({
        streamId: this.options.streamId,
        image: frame.image,
        style: p.style,
        prompt: p.prompt,
        strength: p.strength,
        steps: p.steps,
        seed: p.seed,
        consistency: p.consistency,
      });
      const returned = nowMs();
      if (this.closed) return;
      // Time not covered by the worker's own stages is transfer and scheduling overhead.
      const first = result.stages[0];
      const last = result.stages[result.stages.length - 1];
      recordStage(frame, 'dispatch', taken, first ? first.startMs : returned);
      frame.stages.push(...result.stages);
      if (last) recordStage(frame, 'dispatch', last.endMs, returned);
      frame.image = result.image;
      this.framesOut++;
      this.outputRate.mark(returned);
      this.options.onOutput(frame);
    } catch (error) {
      this.errors++;
      this.options.onError?.(error instanceof Error ? error : new Error(String(error)));
    }
  }
}
