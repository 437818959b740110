// Sessions: one publisher's WebRTC session (stream/) joined to its per-stream engine (realtime/).
// A Session owns both and frees both in close(); the SessionManager admits, finds and closes them.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Restyler } from '../models/restyle-types.js';
import { nowMs } from '../realtime/clock.js';
import type { VideoFrame } from '../realtime/frame.js';
import { type SessionParams, parseParamsPatch, type ParamsLimits } from '../realtime/params.js';
import { admission } from '../realtime/admission.js';
import { StreamEngine, type StreamEngineStats } from '../realtime/stream-engine.js';
import { createPublisherSession, type PublisherSession } from '../stream/publisher-session.js';
import type { ServerConfig } from './config.js';
import { answerControlMessage } from './control-message.js';
import type { ServerMetrics } from './metrics.js';

export class CapacityError extends Error {
  override name = 'CapacityError';
  readonly status = 503;
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

export class Session {
  private statsTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    readonly id: string,
    readonly createdAt: number,
    readonly engine: StreamEngine,
    readonly publisher: PublisherSession,
    private readonly limits: ParamsLimits,
    private readonly logger: Logger,
  ) {}

  startStats(intervalMs: number): void {
    this.statsTimer = setInterval(() => {
      const s = this.engine.stats();
      this.publisher.sendData(
        JSON.stringify({
          type: 'stats',
          inputFps: round(s.inputFps),
          outputFps: round(s.outputFps),
          latencyP50Ms: round(s.latencyP50Ms),
          latencyP95Ms: round(s.latencyP95Ms),
          droppedFrames: s.droppedFrames,
          deadlineMisses: s.deadlineMisses,
        }),
      );
    }, intervalMs);
    this.statsTimer.unref();
  }

  /** Validate and apply a parameter patch from HTTP or the DataChannel. Throws ParamsError. */
  updateParams(input: unknown): SessionParams {
    return this.engine.updateParams(parseParamsPatch(input, this.limits));
  }

  handleControlMessage(text: string): void {
    this.publisher.sendData(JSON.stringify(answerControlMessage(text, this.engine, this.limits)));
  }

  stats(): StreamEngineStats & { id: string; codec: string; uptimeMs: number } {
    return { id: this.id, codec: this.publisher.codec, uptimeMs: nowMs() - this.createdAt, ...this.engine.stats() };
  }

  close(reason: string): Promise<void> {
    this.closing ??= (async () => {
      if (this.statsTimer) clearInterval(this.statsTimer);
      this.engine.close();
      await this.publisher.close();
      this.logger.info({ session: this.id, reason }, 'session closed');
    })();
    return this.closing;
  }
}

/** Sees every frame a session sends (the benchmark's per-frame record). */
export type FrameObserver = (sessionId: string, frame: VideoFrame, firstPacketOutMs: number) => void;

/**
 * Flow-guided consistency is on by default: users expect a steady image. 0.5 cut the warp error by a
 * quarter at no measurable fidelity cost and about 3 ms per frame (sds bench quality; README).
 */
export const DEFAULT_CONSISTENCY = 0.5;

export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private pending = 0;
  /** Live and pending sessions per client address (only for sessions created with an address). */
  private readonly perClient = new Map<string, number>();
  private readonly clientOf = new Map<string, string>();
  readonly frameObservers = new Set<FrameObserver>();

  constructor(
    private readonly config: ServerConfig,
    private readonly restyler: Restyler,
    private readonly metrics: ServerMetrics,
    private readonly logger: Logger,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  all(): Session[] {
    return [...this.sessions.values()];
  }

  defaultParams(): SessionParams {
    const d = this.restyler.info.defaults;
    return { style: d.style, prompt: '', strength: d.strength, steps: d.steps, seed: 42, consistency: DEFAULT_CONSISTENCY, similarityFilter: false };
  }

  limits(): ParamsLimits {
    return { styles: this.restyler.info.styles, steps: this.restyler.info.steps };
  }

  /** Live (and pending) sessions held by one client address. */
  sessionsOf(clientAddress: string): number {
    return this.perClient.get(normalizeAddress(clientAddress)) ?? 0;
  }

  /**
   * Admit a publisher: answer its offer and start its engine. Throws CapacityError, SdpError, ...
   * With `clientAddress`, the per-address cap (--max-sessions-per-client) applies too.
   */
  async create(offerSdp: string, initial?: unknown, clientAddress?: string): Promise<Session> {
    if (this.sessions.size + this.pending >= this.config.maxSessions) {
      this.metrics.sessionErrors.inc({ kind: 'capacity' });
      throw new CapacityError(
        `server is full: ${this.config.maxSessions} sessions are live (limit set by --max-sessions); retry later`,
        10,
      );
    }
    // Measured capacity: refuse a newcomer that would push the model runtime past the ceiling, so the
    // sessions already live keep their budget (the deadline scheduler would otherwise degrade all).
    const utilization = this.restyler.utilization();
    const verdict = admission({
      utilization,
      sessions: this.sessions.size,
      ceiling: this.config.admissionCeiling,
    });
    if (!verdict.admit) {
      this.metrics.sessionErrors.inc({ kind: 'capacity' });
      throw new CapacityError(
        `server is at capacity: the model is ${(utilization * 100).toFixed(0)}% busy and another session is predicted to take it to ${(verdict.predicted * 100).toFixed(0)}% (ceiling ${(this.config.admissionCeiling * 100).toFixed(0)}%, --admission-ceiling); retry later`,
        5,
      );
    }
    const client = clientAddress === undefined ? undefined : normalizeAddress(clientAddress);
    const perClientLimit = this.config.maxSessionsPerClient ?? Infinity;
    if (client !== undefined && (this.perClient.get(client) ?? 0) >= perClientLimit) {
      this.metrics.sessionErrors.inc({ kind: 'capacity' });
      throw new CapacityError(
        `too many sessions from your address: it already holds ${perClientLimit} live sessions (limit set by --max-sessions-per-client); end one (DELETE) or retry later`,
        10,
      );
    }
    this.pending++;
    if (client !== undefined) this.perClient.set(client, (this.perClient.get(client) ?? 0) + 1);
    let admitted = false;
    try {
      const id = randomBytes(16).toString('base64url');
      const log = this.logger.child({ session: id });
      const params = { ...this.defaultParams(), ...(initial ? parseParamsPatch(initial, this.limits()) : {}) };
      // Late binding: the publisher's callbacks need the session, which needs the publisher.
      let session: Session | undefined;
      const engine = new StreamEngine({
        streamId: id,
        restyler: this.restyler,
        params,
        budgetMs: this.config.budgetMs,
        onOutput: (frame) => session?.publisher.sendFrame(frame),
        onDropped: () => this.metrics.framesDropped.inc(),
        onError: (error) => {
          this.metrics.sessionErrors.inc({ kind: 'model' });
          log.warn({ err: error.message }, 'restyle failed; frame skipped');
        },
      });
      const { width, height } = this.config.resolution ?? this.restyler.info;
      let publisher: PublisherSession;
      try {
        publisher = await createPublisherSession(offerSdp, {
          target: { width, height },
          codecs: this.config.codecs,
          maxBitrateKbps: this.config.maxBitrateKbps,
          mediaTimeoutMs: this.config.mediaTimeoutMs,
          logger: log,
          onFrame: (frame) => {
            this.metrics.framesIn.inc();
            engine.push(frame);
          },
          onSent: (frame, sentMs) => {
            engine.frameSent(frame, sentMs);
            this.metrics.observeSentFrame(frame, sentMs, this.config.budgetMs);
            for (const observe of this.frameObservers) observe(id, frame, sentMs);
          },
          onData: (text) => session?.handleControlMessage(text),
          onClosed: (reason) => void this.close(id, reason),
        });
      } catch (error) {
        engine.close();
        throw error;
      }
      session = new Session(id, nowMs(), engine, publisher, this.limits(), log);
      this.sessions.set(id, session);
      if (client !== undefined) this.clientOf.set(id, client);
      admitted = true;
      session.startStats(1000);
      this.metrics.sessionsOpened.inc();
      log.info({ codec: publisher.codec, width, height }, 'session started');
      return session;
    } finally {
      this.pending--;
      if (client !== undefined && !admitted) this.releaseClient(client);
    }
  }

  private releaseClient(client: string): void {
    const n = (this.perClient.get(client) ?? 0) - 1;
    if (n > 0) this.perClient.set(client, n);
    else this.perClient.delete(client);
  }

  async close(id: string, reason: string): Promise<boolean> {
    const session = this.sessions.get(id);
    if (!session) return false;
    this.sessions.delete(id);
    const client = this.clientOf.get(id);
    if (client !== undefined) {
      this.clientOf.delete(id);
      this.releaseClient(client);
    }
    await session.close(reason);
    return true;
  }

  async closeAll(reason: string): Promise<void> {
    await Promise.all([...this.sessions.keys()].map((id) => this.close(id, reason)));
  }

  droppedFrames(): number {
    return this.all().reduce((n, s) => n + s.engine.stats().droppedFrames, 0);
  }
}

/** One key per client: an IPv4 peer on a dual-stack socket appears as ::ffff:a.b.c.d. */
function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function round(v: number): number | null {
  return Number.isFinite(v) ? Math.round(v * 10) / 10 : null;
}
