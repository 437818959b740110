// Sessions: one publisher's WebRTC session (stream/) joined to its per-stream engine (realtime/) and its
// egress (stream/: one encoder per codec, fanned out to viewers). In mediasoup's terms a Session is a
// router with one producer (the publisher) and many consumers (WHEP viewers, and a browser publisher's own
// return path). A Session owns all of them and frees them in close(); the SessionManager admits, names,
// finds and closes sessions and viewers, and keeps per-name parameters for publishers yet to come.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Restyler } from '../models/restyle-types.js';
import { nowMs } from '../frame/clock.js';
import type { VideoFrame } from '../frame/video-frame.js';
import { type SessionParams, parseParamsPatch, type ParamsLimits, type ParamsPatch } from '../realtime/params.js';
import { admission } from '../realtime/admission.js';
import { StreamEngine, type StreamEngineStats } from '../realtime/stream-engine.js';
import { StreamEgress } from '../stream/egress.js';
import { createPublisherSession, type PublisherSession } from '../stream/publisher-session.js';
import { createViewerSession, type ViewerSession } from '../stream/viewer-session.js';
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

/** A second publisher for a name that is live (HTTP 409): the first keeps the name until it ends. */
export class StreamConflictError extends Error {
  override name = 'StreamConflictError';
  readonly status = 409;
}

/** Nothing is published under this name (HTTP 404); a WHEP client may retry. */
export class StreamNotFoundError extends Error {
  override name = 'StreamNotFoundError';
  readonly status = 404;
}

/** A stream name the API does not accept (HTTP 400). */
export class StreamNameError extends Error {
  override name = 'StreamNameError';
  readonly status = 400;
}

/** Stream names: URL-safe, short, case-sensitive (they appear in WHIP/WHEP/overlay URLs). */
const STREAM_NAME = /^[A-Za-z0-9_.~-]{1,64}$/;
/** Names with stored parameters; bounded so PATCH /streams/<name>/params cannot grow memory without end. */
const MAX_PRESETS = 1000;

export function checkStreamName(name: string): string {
  if (!STREAM_NAME.test(name) || name === '.' || name === '..') {
    throw new StreamNameError('a stream name is 1 to 64 characters from A-Z, a-z, 0-9 and "_ . ~ -"');
  }
  return name;
}

export class Session {
  private statsTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  /** WHEP viewers by resource id. */
  readonly viewers = new Map<string, ViewerSession>();

  constructor(
    readonly id: string,
    /** The stream name viewers use (/whep/<name>); the id for a publisher that came to plain /whip. */
    readonly name: string,
    readonly createdAt: number,
    readonly engine: StreamEngine,
    readonly publisher: PublisherSession,
    readonly egress: StreamEgress,
    private readonly limits: ParamsLimits,
    private readonly logger: Logger,
  ) {}

  get closed(): boolean {
    return this.closing !== undefined;
  }

  addViewer(id: string, viewer: ViewerSession): void {
    this.viewers.set(id, viewer);
    this.egress.add(viewer);
  }

  async removeViewer(id: string, reason: string): Promise<boolean> {
    const viewer = this.viewers.get(id);
    if (!viewer) return false;
    this.viewers.delete(id);
    await Promise.all([this.egress.remove(viewer), viewer.close()]);
    this.logger.info({ viewer: id, reason, viewers: this.viewers.size }, 'viewer left');
    return true;
  }

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

  stats(): StreamEngineStats & { id: string; name: string; codec: string; uptimeMs: number; viewers: number; egress: ReturnType<StreamEgress['stats']> } {
    return {
      id: this.id,
      name: this.name,
      codec: this.publisher.codec,
      uptimeMs: nowMs() - this.createdAt,
      ...this.engine.stats(),
      viewers: this.viewers.size,
      egress: this.egress.stats(),
    };
  }

  close(reason: string): Promise<void> {
    this.closing ??= (async () => {
      if (this.statsTimer) clearInterval(this.statsTimer);
      this.engine.close();
      // The stream ends for its viewers too; their players (the overlay) reconnect and wait for the name.
      await Promise.all([...this.viewers.keys()].map((v) => this.removeViewer(v, `stream ended: ${reason}`)));
      await Promise.all([this.egress.close(), this.publisher.close()]);
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
  private readonly byName = new Map<string, Session>();
  /** Names whose publisher is being negotiated: a second POST for one of them is a conflict too. */
  private readonly pendingNames = new Set<string>();
  /** Viewer resource id → the session it watches. */
  private readonly viewerSessions = new Map<string, Session>();
  private pendingViewers = 0;
  /** Parameters stored per stream name (PATCH /streams/<name>/params), applied when its publisher arrives. */
  private readonly presets = new Map<string, ParamsPatch>();
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

  byStreamName(name: string): Session | undefined {
    return this.byName.get(name);
  }

  /** Names of the live streams and of those being set up (a plain /whip session's name is its id). */
  streamNames(): string[] {
    return [...new Set([...this.byName.keys(), ...this.pendingNames])];
  }

  /** Sessions accepted and still being set up (ICE gathering, codecs): they count against capacity already. */
  get starting(): number {
    return this.pending;
  }

  /** Live WHEP viewers over all streams. */
  get viewerCount(): number {
    return this.viewerSessions.size;
  }

  /** The parameters a stream has now (live) or will start with (stored for a name not yet live). */
  streamParams(name: string): { live: boolean; params: SessionParams } {
    const session = this.byName.get(checkStreamName(name));
    if (session) return { live: true, params: session.engine.currentParams };
    return { live: false, params: { ...this.defaultParams(), ...this.presets.get(name) } };
  }

  /** Validate and store a patch for `name` (kept for its next publisher) and apply it to the live stream, if any. */
  patchStreamParams(name: string, input: unknown): { live: boolean; params: SessionParams } {
    checkStreamName(name);
    const patch = parseParamsPatch(input, this.limits());
    if (!this.presets.has(name) && this.presets.size >= MAX_PRESETS) {
      throw Object.assign(new Error(`parameters are stored for ${MAX_PRESETS} stream names already; reuse a name`), { status: 507 });
    }
    this.presets.set(name, { ...this.presets.get(name), ...patch });
    const session = this.byName.get(name);
    if (session) session.engine.updateParams(patch);
    return this.streamParams(name);
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
  async create(offerSdp: string, initial?: unknown, clientAddress?: string, streamName?: string): Promise<Session> {
    // One publisher per name: a second one gets 409 rather than taking over, so two encoders configured with
    // the same URL cannot kick each other off in turn. OBS sends DELETE when it stops; after a crash the old
    // session ends at --media-timeout-ms.
    if (streamName !== undefined && (this.byName.has(checkStreamName(streamName)) || this.pendingNames.has(streamName))) {
      this.metrics.sessionErrors.inc({ kind: 'conflict' });
      throw new StreamConflictError(
        `stream "${streamName}" already has a live publisher; stop it (DELETE its session) or wait ${Math.round(this.config.mediaTimeoutMs / 1000)} s after it vanished`,
      );
    }
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
    if (streamName !== undefined) this.pendingNames.add(streamName);
    if (client !== undefined) this.perClient.set(client, (this.perClient.get(client) ?? 0) + 1);
    let admitted = false;
    try {
      const id = randomBytes(16).toString('base64url');
      const name = streamName ?? id;
      const log = this.logger.child({ session: id, stream: streamName });
      // Defaults, then what was stored for the name, then the WHIP URL's query (most specific wins).
      const params = {
        ...this.defaultParams(),
        ...this.presets.get(name),
        ...(initial ? parseParamsPatch(initial, this.limits()) : {}),
      };
      const { width, height } = this.config.resolution ?? this.restyler.info;
      // Late binding: the publisher's callbacks need the session, which needs the publisher.
      let session: Session | undefined;
      const egress = new StreamEgress({
        width,
        height,
        maxBitrateKbps: this.config.maxBitrateKbps,
        logger: log,
        onSent: (frame, sentMs) => {
          engine.frameSent(frame, sentMs);
          this.metrics.observeSentFrame(frame, sentMs, this.config.budgetMs);
          for (const observe of this.frameObservers) observe(id, frame, sentMs);
        },
        // The encoder failed again right after being re-opened: end the stream with a reason rather than
        // keep a publisher sending into a session that can output nothing.
        onFailed: (reason) => {
          this.metrics.sessionErrors.inc({ kind: 'encoder' });
          log.error({ reason }, 'ending the session: its encoder keeps failing');
          void this.close(id, `encoder failed: ${reason}`);
        },
      });
      const engine = new StreamEngine({
        streamId: id,
        restyler: this.restyler,
        params,
        budgetMs: this.config.budgetMs,
        onOutput: (frame) => egress.send(frame),
        onDropped: () => this.metrics.framesDropped.inc(),
        onError: (error) => {
          this.metrics.sessionErrors.inc({ kind: 'model' });
          log.warn({ err: error.message }, 'restyle failed; frame skipped');
        },
      });
      let publisher: PublisherSession;
      try {
        publisher = await createPublisherSession(offerSdp, {
          target: { width, height },
          codecs: this.config.codecs,
          maxBitrateKbps: this.config.maxBitrateKbps,
          mediaTimeoutMs: this.config.mediaTimeoutMs,
          playoutDelayMaxMs: this.config.playoutDelayMaxMs,
          logger: log,
          ownEgress: false,
          onFrame: (frame) => {
            this.metrics.framesIn.inc();
            engine.push(frame);
          },
          onAudioRtp: (rtp) => {
            for (const viewer of session?.viewers.values() ?? []) if (viewer.receivesAudio) viewer.sendAudio(rtp);
          },
          onData: (text) => session?.handleControlMessage(text),
          onClosed: (reason) => void this.close(id, reason),
        });
      } catch (error) {
        engine.close();
        await egress.close();
        throw error;
      }
      session = new Session(id, name, nowMs(), engine, publisher, egress, this.limits(), log);
      // A browser (sendrecv) publisher sees its own restyled video: one more consumer of the shared encoder.
      if (publisher.returnPath) egress.add(publisher.returnPath);
      this.sessions.set(id, session);
      this.byName.set(name, session);
      if (client !== undefined) this.clientOf.set(id, client);
      admitted = true;
      session.startStats(1000);
      this.metrics.sessionsOpened.inc();
      log.info({ codec: publisher.codec, width, height, returnsVideo: publisher.returnPath !== undefined }, 'session started');
      return session;
    } finally {
      this.pending--;
      if (streamName !== undefined) this.pendingNames.delete(streamName);
      if (client !== undefined && !admitted) this.releaseClient(client);
    }
  }

  private releaseClient(client: string): void {
    const n = (this.perClient.get(client) ?? 0) - 1;
    if (n > 0) this.perClient.set(client, n);
    else this.perClient.delete(client);
  }

  /**
   * Admit a WHEP viewer of the live stream `name`: answer its offer and add it to the stream's egress (no new
   * encoder unless it is the first viewer of its codec). Throws StreamNotFoundError, CapacityError, SdpError, ...
   */
  async createViewer(name: string, offerSdp: string): Promise<{ id: string; session: Session; viewer: ViewerSession }> {
    const found = this.byName.get(checkStreamName(name));
    if (!found) throw new StreamNotFoundError(`nothing is published as "${name}" right now; retry when its publisher is live`);
    if (this.viewerSessions.size + this.pendingViewers >= this.config.maxViewers) {
      this.metrics.sessionErrors.inc({ kind: 'capacity' });
      throw new CapacityError(`server is full: ${this.config.maxViewers} viewers are watching (limit set by --max-viewers); retry later`, 10);
    }
    this.pendingViewers++;
    try {
      const id = randomBytes(16).toString('base64url');
      const log = this.logger.child({ session: found.id, viewer: id });
      // Codecs: the server's preference order, so every viewer that offers VP8 shares the VP8 encoder.
      const viewer = await createViewerSession(offerSdp, {
        codecs: this.config.codecs,
        mediaTimeoutMs: this.config.mediaTimeoutMs,
        playoutDelayMaxMs: this.config.playoutDelayMaxMs,
        logger: log,
        onClosed: (reason) => void this.closeViewer(id, reason),
      });
      if (found.closed || this.sessions.get(found.id) !== found) {
        await viewer.close();
        throw new StreamNotFoundError(`stream "${name}" ended while the viewer was connecting; retry`);
      }
      found.addViewer(id, viewer);
      this.viewerSessions.set(id, found);
      log.info({ codec: viewer.codec, audio: viewer.receivesAudio, viewers: found.viewers.size }, 'viewer joined');
      return { id, session: found, viewer };
    } finally {
      this.pendingViewers--;
    }
  }

  getViewer(id: string): { session: Session; viewer: ViewerSession } | undefined {
    const session = this.viewerSessions.get(id);
    const viewer = session?.viewers.get(id);
    return session && viewer ? { session, viewer } : undefined;
  }

  async closeViewer(id: string, reason: string): Promise<boolean> {
    const session = this.viewerSessions.get(id);
    if (!session) return false;
    this.viewerSessions.delete(id);
    return session.removeViewer(id, reason);
  }

  async close(id: string, reason: string): Promise<boolean> {
    const session = this.sessions.get(id);
    if (!session) return false;
    this.sessions.delete(id);
    if (this.byName.get(session.name) === session) this.byName.delete(session.name);
    for (const viewerId of session.viewers.keys()) this.viewerSessions.delete(viewerId);
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
