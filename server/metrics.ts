// Prometheus metrics (prom-client) for /metrics. One registry per server instance so several servers
// in one process (tests, the benchmark) never share counters.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import client from 'prom-client';
import type { VideoFrame } from '../frame/video-frame.js';

const STAGE_BUCKETS_MS = [0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 40, 60, 100, 250];
const LATENCY_BUCKETS_MS = [5, 10, 15, 20, 25, 30, 35, 40, 50, 60, 80, 100, 150, 250, 500];

export class ServerMetrics {
  readonly registry = new client.Registry();
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  readonly stageSeconds: client.Histogram<'stage'>;
  readonly frameLatency: client.Histogram;
  readonly framesIn: client.Counter;
  readonly framesOut: client.Counter;
  readonly framesDropped: client.Counter;
  readonly deadlineMisses: client.Counter;
  readonly sessionsOpened: client.Counter;
  readonly sessionErrors: client.Counter<'kind'>;

  constructor(gauges: {
    sessions(): number;
    viewers?(): number;
    modelQueueDepth(): number;
    modelUtilization(): number;
    fps(): { input: number; output: number };
  }) {
    const r = [this.registry];
    client.collectDefaultMetrics({ register: this.registry });
    this.loopDelay.enable();
    this.stageSeconds = new client.Histogram({
      name: 'sds_stage_duration_ms',
      help: 'Time a frame spends in each pipeline stage, milliseconds',
      labelNames: ['stage'],
      buckets: STAGE_BUCKETS_MS,
      registers: r,
    });
    this.frameLatency = new client.Histogram({
      name: 'sds_frame_latency_ms',
      help: "Server latency: a frame's last packet in → its first restyled packet out, milliseconds",
      buckets: LATENCY_BUCKETS_MS,
      registers: r,
    });
    this.framesIn = new client.Counter({ name: 'sds_frames_in_total', help: 'Decoded input frames', registers: r });
    this.framesOut = new client.Counter({ name: 'sds_frames_out_total', help: 'Restyled frames sent', registers: r });
    this.framesDropped = new client.Counter({
      name: 'sds_frames_dropped_total',
      help: 'Input frames replaced in the mailbox by a newer one (latest frame wins)',
      registers: r,
    });
    this.deadlineMisses = new client.Counter({
      name: 'sds_deadline_misses_total',
      help: 'Frames sent after their latency budget',
      registers: r,
    });
    this.sessionsOpened = new client.Counter({ name: 'sds_sessions_opened_total', help: 'Sessions created', registers: r });
    this.sessionErrors = new client.Counter({
      name: 'sds_session_errors_total',
      help: 'Session-level errors by kind',
      labelNames: ['kind'],
      registers: r,
    });
    new client.Gauge({
      name: 'sds_sessions',
      help: 'Live publisher sessions',
      registers: r,
      collect() {
        this.set(gauges.sessions());
      },
    });
    new client.Gauge({
      name: 'sds_viewers',
      help: "Live WHEP viewers over all streams (each gets the stream's shared encoding, no encoder of its own)",
      registers: r,
      collect() {
        this.set(gauges.viewers?.() ?? 0);
      },
    });
    new client.Gauge({
      name: 'sds_model_queue_depth',
      help: 'Inference requests waiting for or running in a model worker',
      registers: r,
      collect() {
        this.set(gauges.modelQueueDepth());
      },
    });
    new client.Gauge({
      name: 'sds_model_utilization',
      help: 'Fraction of the last 3 s the inference workers were busy (admission control reads it)',
      registers: r,
      collect() {
        this.set(gauges.modelUtilization());
      },
    });
    new client.Gauge({
      name: 'sds_fps',
      help: 'Frames per second summed over sessions',
      labelNames: ['direction'],
      registers: r,
      collect() {
        const fps = gauges.fps();
        this.set({ direction: 'input' }, fps.input);
        this.set({ direction: 'output' }, fps.output);
      },
    });
    const loop = this.loopDelay;
    new client.Gauge({
      name: 'sds_event_loop_delay_ms',
      help: 'Main-thread event-loop delay since start, milliseconds',
      labelNames: ['quantile'],
      registers: r,
      collect() {
        for (const q of [50, 99]) this.set({ quantile: String(q / 100) }, loop.percentile(q) / 1e6);
        this.set({ quantile: '1' }, loop.max / 1e6);
      },
    });
  }

  /** Event-loop delay percentiles in ms since start (for stats and the benchmark). */
  eventLoopDelay(): { p50: number; p99: number; max: number } {
    return {
      p50: this.loopDelay.percentile(50) / 1e6,
      p99: this.loopDelay.percentile(99) / 1e6,
      max: this.loopDelay.max / 1e6,
    };
  }

  observeSentFrame(frame: VideoFrame, sentMs: number, budgetMs: number): void {
    for (const s of frame.stages) {
      if (Number.isFinite(s.endMs)) this.stageSeconds.observe({ stage: s.name }, s.endMs - s.startMs);
    }
    const latency = sentMs - frame.arrivalMs;
    this.frameLatency.observe(latency);
    this.framesOut.inc();
    if (latency > budgetMs) this.deadlineMisses.inc();
  }

  close(): void {
    this.loopDelay.disable();
    this.registry.clear();
  }
}
