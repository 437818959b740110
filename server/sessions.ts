// Sessions: one publisher (a WHIP peer or a WebSocket client) joined to its frame pipeline (ingress →
// engine → egress, server/frame-pipeline.ts). In mediasoup's terms a Session is a router with one producer
// (the publisher) and many consumers (WHEP viewers, and a browser publisher's own return path). A Session
// owns all of them and frees them in close(); the SessionManager admits, names, finds and closes sessions
// and viewers, and keeps per-name parameters for publishers yet to come. open() is the one place a
// pipeline is opened, for every kind of publisher, behind the same admission.
import type { IceNetwork } from '../stream/ice-network.js';
import { peerIceNetwork } from './network-config.js';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Restyler } from '../models/restyle-types.js';
import { nowMs } from '../frame/clock.js';
import type { VideoFrame } from '../frame/video-frame.js';
import { type SessionParams, parseParamsPatch, type ParamsLimits, type ParamsPatch } from '../realtime/params.js';
import { admission } from '../realtime/admission.js';
import type { RestyleEngine, RestyleEngineStats } from '../realtime/restyle-engine.js';
import { VideoEgress, type OpenEncoder } from '../stream/egress.js';
import { createPublisherSession, type PublisherSession } from '../stream/publisher-session.js';
import { createViewerSession, type ViewerSession } from '../stream/viewer-session.js';
import type { ServerConfig } from './config.js';
import { answerControlMessage } from './control-message.js';
import { FramePipeline, type EgressEvents, type FrameEgress, type FrameObserver } from './frame-pipeline.js';
import type { ServerMetrics } from './metrics.js';

export type { FrameObserver } from './frame-pipeline.js';

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

/** A stream's publisher as its session sees it: a WHIP peer (stream/publisher-session.ts) or a WebSocket client. */
export interface StreamPublisher {
  readonly codec: string;
  /** A control answer, stats or an error, as JSON text (DataChannel or WebSocket text message). */
  sendData(text: string): void;
  stats(): object;
  /** A restyle failed: tell the client, if this kind of publisher does. */
  restyleFailed?(error: Error): void;
  close(): Promise<void>;
}

export class Session<P extends StreamPublisher = StreamPublisher, E extends FrameEgress = FrameEgress> {
  private statsTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  /** WHEP viewers by resource id. */
  readonly viewers = new Map<string, ViewerSession>();

  constructor(
    readonly id: string,
    /** The stream name viewers use (/whep/<name>); the id for a publisher that came to plain /whip. */
    readonly name: string,
    readonly createdAt: number,
    readonly pipeline: FramePipeline<E>,
    readonly publisher: P,
    private readonly limits: ParamsLimits,
    private readonly logger: Logger,
  ) {}

  get engine(): RestyleEngine {
    return this.pipeline.engine;
  }

  get egress(): E {
    return this.pipeline.egress;
  }

  private get fanout(): VideoEgress {
    if (!(this.pipeline.egress instanceof VideoEgress)) throw new StreamNotFoundError(`stream "${this.name}" has no WebRTC playback`);
    return this.pipeline.egress;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  addViewer(id: string, viewer: ViewerSession): void {
    this.fanout.add(viewer);
    this.viewers.set(id, viewer);
  }

  async removeViewer(id: string, reason: string): Promise<boolean> {
    const viewer = this.viewers.get(id);
    if (!viewer) return false;
    this.viewers.delete(id);
    await Promise.all([this.fanout.remove(viewer), viewer.close()]);
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

  stats(): RestyleEngineStats & { id: string; name: string; codec: string; uptimeMs: number; viewers: number; egress: object } {
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

  /** `retry`: the session ended for the server's sake (shutdown, drain), not the client's: it may publish again. */
  close(reason: string, { retry = false }: { retry?: boolean } = {}): Promise<void> {
    this.closing ??= (async () => {
      if (this.statsTimer) clearInterval(this.statsTimer);
      // Tell the publisher why before its connection goes (DataChannel or WebSocket text; a vanished one hears nothing).
      this.publisher.sendData(JSON.stringify({ type: 'closed', reason, retry }));
      this.engine.close();
      // The stream ends for its viewers too; their players (the overlay) reconnect and wait for the name.
      await Promise.all([...this.viewers.keys()].map((v) => this.removeViewer(v, `stream ended: ${reason}`)));
      await Promise.all([this.pipeline.close(), this.publisher.close()]);
      this.logger.info({ session: this.id, reason }, 'session closed');
    })();
    return this.closing;
  }
}

/** What open() needs to know about a kind of publisher. */
/** A WebRTC (WHIP) publisher's session: its egress encodes once per codec for every WebRTC consumer. */
export type WhipSession = Session<PublisherSession, VideoEgress>;

export interface OpenSpec<P extends StreamPublisher, E extends FrameEgress> {
  /** Published under this name (/whip/<name>); else under its id. */
  streamName?: string;
  /** Initial parameters (the WHIP URL's query), validated here. */
  initial?: unknown;
  /** With it, the per-address cap (--max-sessions-per-client) applies too. */
  clientAddress?: string;
  /** Prefix of the session id (a WebSocket session's id starts with `ws-`). */
  idPrefix?: string;
  /** The stream's egress, given the frame size and what it reports back to. */
  egress(events: EgressEvents, size: { width: number; height: number }, logger: Logger): E;
  /** Starts the publisher side, which pushes its frames into `pipeline` and reaches its session through `link`. */
  publisher(pipeline: FramePipeline<E>, link: SessionLink, size: { width: number; height: number }, logger: Logger): Promise<P>;
}

/** A publisher's way back to its session, which exists only once the publisher does. */
export interface SessionLink {
  readonly id: string;
  session(): Session | undefined;
  close(reason: string): void;
}

/**
 * Flow-guided consistency is on by default: users expect a steady image. 0.5 cut the warp error by a
 * quarter at no measurable fidelity cost and about 3 ms per frame (sds bench quality; README).
 */
export const DEFAULT_CONSISTENCY = 0.5;

export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private readonly byName = new Map<string, WhipSession>();
  /** Names whose publisher is being negotiated: a second POST for one of them is a conflict too. */
  private readonly pendingNames = new Set<string>();
  /** Viewer resource id → the session it watches. */
  private readonly viewerSessions = new Map<string, WhipSession>();
  private pendingViewers = 0;
  /** Parameters stored per stream name (PATCH /streams/<name>/params), applied when its publisher arrives. */
  private readonly presets = new Map<string, ParamsPatch>();
  private pending = 0;
  /** Live and pending sessions per client address (only for sessions created with an address). */
  private readonly perClient = new Map<string, number>();
  private readonly clientOf = new Map<string, string>();
  /** Set while the server drains: new publishers are refused with this message; live sessions carry on. */
  private refusal: string | undefined;
  readonly frameObservers = new Set<FrameObserver>();
  /** Every publisher's and viewer's ICE settings (a server on a loopback address offers loopback candidates). */
  private readonly network: IceNetwork;

  constructor(
    private readonly config: ServerConfig,
    private readonly restyler: Restyler,
    private readonly metrics: ServerMetrics,
    private readonly logger: Logger,
    /** Opens each stream's encoders (default: FFmpeg's). */
    private readonly openEncoder?: OpenEncoder,
  ) {
    this.network = peerIceNetwork(config.network, config.host);
  }

  get size(): number {
    return this.sessions.size;
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  /** The session `id` if it is a WebRTC (WHIP) publisher's. */
  whip(id: string): WhipSession | undefined {
    const session = this.sessions.get(id);
    return session && isWhip(session) ? session : undefined;
  }

  /** The live WebRTC stream published under `name` (WHEP viewers join these). */
  byStreamName(name: string): WhipSession | undefined {
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
    return {
      style: d.style,
      prompt: '',
      strength: d.strength,
      steps: d.steps,
      seed: 42,
      consistency: DEFAULT_CONSISTENCY,
      similarityFilter: false,
    };
  }

  limits(): ParamsLimits {
    return { styles: this.restyler.info.styles, steps: this.restyler.info.steps };
  }

  /** From now on refuse new publishers (503 with `message`); live sessions and their viewers carry on. */
  refuseNewPublishers(message: string): void {
    this.refusal = message;
  }

  /** Live and pending sessions per client address (a cluster worker reports them for the cluster-wide limit). */
  clientCounts(): Record<string, number> {
    return Object.fromEntries(this.perClient);
  }

  /** Live (and pending) sessions held by one client address. */
  sessionsOf(clientAddress: string): number {
    return this.perClient.get(normalizeAddress(clientAddress)) ?? 0;
  }

  /**
   * Admit a WHIP publisher: answer its offer and start its pipeline. Throws CapacityError, SdpError, ...
   * With `clientAddress`, the per-address cap (--max-sessions-per-client) applies too.
   */
  async create(offerSdp: string, initial?: unknown, clientAddress?: string, streamName?: string): Promise<WhipSession> {
    const session = await this.open<PublisherSession, VideoEgress>({
      streamName,
      initial,
      clientAddress,
      egress: (events, { width, height }, logger) =>
        new VideoEgress({
          width,
          height,
          maxBitrateKbps: this.config.maxBitrateKbps,
          logger,
          onSent: events.sent,
          onFailed: events.failed,
          ...(this.openEncoder ? { openEncoder: this.openEncoder } : {}),
        }),
      publisher: async (pipeline, link, size, logger) => {
        const publisher = await createPublisherSession(offerSdp, {
          target: size,
          codecs: this.config.codecs,
          maxBitrateKbps: this.config.maxBitrateKbps,
          mediaTimeoutMs: this.config.mediaTimeoutMs,
          network: this.network,
          playoutDelayMaxMs: this.config.playoutDelayMaxMs,
          logger,
          onFrame: (frame) => pipeline.push(frame),
          onAudioRtp: (rtp) => {
            for (const viewer of link.session()?.viewers.values() ?? []) if (viewer.receivesAudio) viewer.sendAudio(rtp);
          },
          onData: (text) => link.session()?.handleControlMessage(text),
          onClosed: (reason) => link.close(reason),
        });
        // A browser (sendrecv) publisher sees its own restyled video: one more consumer of the shared encoder.
        if (publisher.returnPath) pipeline.egress.add(publisher.returnPath);
        return publisher;
      },
    });
    session.startStats(1000);
    return session;
  }

  /**
   * Admit a publisher of any kind and open its frame pipeline: the limits (sessions, measured capacity,
   * per client, one publisher per name), then egress → engine → publisher. Throws CapacityError,
   * StreamConflictError, and whatever starting the publisher throws (the pipeline is closed then).
   */
  async open<P extends StreamPublisher, E extends FrameEgress>(spec: OpenSpec<P, E>): Promise<Session<P, E>> {
    const { streamName } = spec;
    // One publisher per name: a second one gets 409 rather than taking over, so two encoders configured with
    // the same URL cannot kick each other off in turn. OBS sends DELETE when it stops; after a crash the old
    // session ends at --media-timeout-ms.
    if (streamName !== undefined && (this.byName.has(checkStreamName(streamName)) || this.pendingNames.has(streamName))) {
      this.metrics.sessionErrors.inc({ kind: 'conflict' });
      throw new StreamConflictError(
        `stream "${streamName}" already has a live publisher; stop it (DELETE its session) or wait ${Math.round(this.config.mediaTimeoutMs / 1000)} s after it vanished`,
      );
    }
    if (this.refusal !== undefined) {
      this.metrics.sessionErrors.inc({ kind: 'capacity' });
      throw new CapacityError(this.refusal, 2);
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
    const client = spec.clientAddress === undefined ? undefined : normalizeAddress(spec.clientAddress);
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
      const id = (spec.idPrefix ?? '') + randomBytes(16).toString('base64url');
      const name = streamName ?? id;
      const log = this.logger.child({ session: id, stream: streamName });
      // Defaults, then what was stored for the name, then the WHIP URL's query (most specific wins).
      const params = {
        ...this.defaultParams(),
        ...this.presets.get(name),
        ...(spec.initial ? parseParamsPatch(spec.initial, this.limits()) : {}),
      };
      const size = this.config.resolution ?? { width: this.restyler.info.width, height: this.restyler.info.height };
      // Late binding: the publisher's callbacks need the session, which needs the publisher.
      let session: Session<P, E> | undefined;
      const link: SessionLink = { id, session: () => session, close: (reason) => void this.close(id, reason) };
      const pipeline = new FramePipeline<E>({
        id,
        restyler: this.restyler,
        params,
        budgetMs: this.config.budgetMs,
        metrics: this.metrics,
        observers: this.frameObservers,
        logger: log,
        egress: (events) => spec.egress(events, size, log),
        // The encoder failed again right after being re-opened: end the stream with a reason rather than
        // keep a publisher sending into a session that can output nothing.
        onEgressFailed: (reason) => void this.close(id, `encoder failed: ${reason}`),
        onRestyleError: (error) => session?.publisher.restyleFailed?.(error),
      });
      let publisher: P;
      try {
        publisher = await spec.publisher(pipeline, link, size, log);
      } catch (error) {
        await pipeline.close();
        throw error;
      }
      session = new Session(id, name, nowMs(), pipeline, publisher, this.limits(), log);
      this.sessions.set(id, session);
      if (isWhip(session)) this.byName.set(name, session);
      if (client !== undefined) this.clientOf.set(id, client);
      admitted = true;
      this.metrics.sessionsOpened.inc();
      log.info({ codec: publisher.codec, ...size }, 'session started');
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
      throw new CapacityError(
        `server is full: ${this.config.maxViewers} viewers are watching (limit set by --max-viewers); retry later`,
        10,
      );
    }
    this.pendingViewers++;
    try {
      const id = randomBytes(16).toString('base64url');
      const log = this.logger.child({ session: found.id, viewer: id });
      // Codecs: the server's preference order, so every viewer that offers VP8 shares the VP8 encoder.
      const viewer = await createViewerSession(offerSdp, {
        codecs: this.config.codecs,
        mediaTimeoutMs: this.config.mediaTimeoutMs,
        network: this.network,
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

  async close(id: string, reason: string, how: { retry?: boolean } = {}): Promise<boolean> {
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
    await session.close(reason, how);
    return true;
  }

  /** Every session, for the server's sake (its clients are told they may publish again). */
  async closeAll(reason: string): Promise<void> {
    await Promise.all([...this.sessions.keys()].map((id) => this.close(id, reason, { retry: true })));
  }

  droppedFrames(): number {
    return this.all().reduce((n, s) => n + s.engine.stats().droppedFrames, 0);
  }
}

function isWhip(session: Session<StreamPublisher, FrameEgress>): session is WhipSession {
  return session.egress instanceof VideoEgress;
}

/** One key per client: an IPv4 peer on a dual-stack socket appears as ::ffff:a.b.c.d. */
function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function round(v: number): number | null {
  return Number.isFinite(v) ? Math.round(v * 10) / 10 : null;
}
