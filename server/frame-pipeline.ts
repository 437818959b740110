// One stream's frame path: ingress → engine → egress. Opened here, and only here, for a WHIP publisher
// and a WebSocket client alike (SessionManager.open). Each link is a method, so a reader can follow a
// frame: the ingress calls push(), the engine's output goes to the egress's send(), and the egress reports
// the frame sent to frameSent(), which closes the latency record, the metrics and the observers.
import type { Logger } from 'pino';
import type { VideoFrame } from '../frame/video-frame.js';
import type { Restyler } from '../models/restyle-types.js';
import type { SessionParams } from '../realtime/params.js';
import { RestyleEngine } from '../realtime/restyle-engine.js';
import type { ServerMetrics } from './metrics.js';

/** Where restyled frames leave the server: encoded once for WebRTC consumers, or as JPEG on a WebSocket. */
export interface FrameEgress {
  send(frame: VideoFrame): void;
  stats(): object;
  close(): Promise<void>;
}

/** What the egress tells its pipeline. */
export interface EgressEvents {
  /** A frame's first byte went out. */
  sent(frame: VideoFrame, sentMs: number): void;
  /** The egress cannot send any more (its encoder keeps failing): the stream should end with this reason. */
  failed(reason: string): void;
}

/** Sees every frame a stream sends (the benchmark's per-frame record). */
export type FrameObserver = (sessionId: string, frame: VideoFrame, firstPacketOutMs: number) => void;

export interface FramePipelineOptions<E extends FrameEgress> {
  id: string;
  restyler: Restyler;
  params: SessionParams;
  budgetMs: number;
  metrics: ServerMetrics;
  observers: ReadonlySet<FrameObserver>;
  logger: Logger;
  /** Builds the egress, given what it reports back to. */
  egress(events: EgressEvents): E;
  /** The egress gave up: the owner ends the stream. */
  onEgressFailed(reason: string): void;
  /** A restyle failed (the frame is skipped and the engine goes on); after the metrics and the log. */
  onRestyleError?(error: Error): void;
}

export class FramePipeline<E extends FrameEgress = FrameEgress> {
  readonly engine: RestyleEngine;
  readonly egress: E;

  constructor(private readonly options: FramePipelineOptions<E>) {
    this.egress = options.egress({
      sent: (frame, sentMs) => this.frameSent(frame, sentMs),
      failed: (reason) => this.egressFailed(reason),
    });
    this.engine = new RestyleEngine({
      streamId: options.id,
      restyler: options.restyler,
      params: options.params,
      budgetMs: options.budgetMs,
      onOutput: (frame) => this.egress.send(frame),
      onDropped: () => options.metrics.framesDropped.inc(),
      onError: (error) => this.restyleFailed(error),
    });
  }

  /** ingress → engine: a decoded, scaled frame arrived. */
  push(frame: VideoFrame): void {
    this.options.metrics.framesIn.inc();
    this.engine.push(frame);
  }

  /** egress → engine: the frame's first byte went out (closes its latency record). */
  private frameSent(frame: VideoFrame, sentMs: number): void {
    const { metrics, budgetMs, observers, id } = this.options;
    this.engine.frameSent(frame, sentMs);
    metrics.observeSentFrame(frame, sentMs, budgetMs);
    for (const observe of observers) observe(id, frame, sentMs);
  }

  private egressFailed(reason: string): void {
    this.options.metrics.sessionErrors.inc({ kind: 'encoder' });
    this.options.logger.error({ reason }, 'ending the session: its encoder keeps failing');
    this.options.onEgressFailed(reason);
  }

  private restyleFailed(error: Error): void {
    this.options.metrics.sessionErrors.inc({ kind: 'model' });
    this.options.logger.warn({ err: error.message }, 'restyle failed; frame skipped');
    this.options.onRestyleError?.(error);
  }

  /** Stops the engine first (no more output), then frees the egress. */
  async close(): Promise<void> {
    this.engine.close();
    await this.egress.close();
  }
}
