// Composition root: load the model runtime, create metrics and sessions, serve HTTP. `close()` tears
// everything down in reverse order, so tests and the benchmark can run servers in-process.
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { ModelRuntime } from '../realtime/model-runtime.js';
import type { Restyler } from '../models/restyle-types.js';
import type { OpenEncoder } from '../stream/egress.js';
import type { ServerConfig } from './config.js';
import { buildHttpApp } from './api-routes.js';
import { serverUrl } from './http-server.js';
import { ServerMetrics } from './metrics.js';
import { SessionManager } from './sessions.js';
import { attachWebSocketFallback } from './websocket-fallback.js';
import { connectRedis, WorkerRegistration, type WorkerRecord } from './cluster/registry.js';

export interface RunningServer {
  url: string;
  port: number;
  sessions: SessionManager;
  metrics: ServerMetrics;
  restyler: Restyler;
  logger: Logger;
  /**
   * Drain: refuse new publishers (and leave the cluster's choice at once, as a worker), let the live
   * sessions and their viewers run until they end or --drain-timeout-ms passes, then close. Idempotent;
   * resolves when the server is closed. SIGTERM on a worker and POST /admin/drain both call it.
   */
  drain(reason: string): Promise<void>;
  /** Resolves once a drain, however started, has closed the server (the CLI exits 0 then). */
  readonly drained: Promise<void>;
  close(): Promise<void>;
}

/**
 * What the server is built from besides its config; each defaults to the real thing. Tests inject faults
 * here (a worker that crashes, encoders that fail) so that the product's own error paths run.
 */
export interface ServerDependencies {
  /** The module each inference worker thread runs (ModelRuntimeOptions.workerEntry). */
  inferenceWorker?: URL;
  /** Opens each stream's encoders (EgressOptions.openEncoder). */
  openEncoder?: OpenEncoder;
}

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'sds' } });
}

export async function startServer(
  given: ServerConfig,
  logger = createLogger(given.logLevel),
  deps: ServerDependencies = {},
): Promise<RunningServer> {
  // A copy: a worker learns its public URL only once it listens (port 0), and routes read it from here.
  const config = { ...given };
  // A worker fails fast when Redis is not there, before loading the model.
  const redis = config.role === 'worker' ? await connectRedis(config.redisUrl!, logger) : undefined;
  const restyler = await ModelRuntime.load({
    modelDir: config.modelDir,
    provider: config.provider,
    fallbackToCpu: config.fallbackToCpu,
    workers: config.workers,
    intraOpThreads: config.intraOpThreads,
    ...(config.resolution ? { servedResolution: config.resolution } : {}),
    imageBlend: config.imageBlend,
    logger,
    ...(deps.inferenceWorker ? { workerEntry: deps.inferenceWorker } : {}),
  }).catch(async (err: unknown) => {
    await redis?.quit().catch(() => redis.destroy());
    throw err;
  });
  let sessions: SessionManager | undefined;
  const metrics = new ServerMetrics({
    sessions: () => sessions?.size ?? 0,
    viewers: () => sessions?.viewerCount ?? 0,
    modelQueueDepth: () => restyler.queueDepth,
    modelUtilization: () => restyler.utilization(),
    fps: () => {
      const all = sessions?.all() ?? [];
      return all.reduce(
        (acc, s) => {
          const st = s.engine.stats();
          return { input: acc.input + st.inputFps, output: acc.output + st.outputFps };
        },
        { input: 0, output: 0 },
      );
    },
  });
  const manager = new SessionManager(config, restyler, metrics, logger, deps.openEncoder);
  sessions = manager;
  let registration: WorkerRegistration | undefined;
  let draining: { done: Promise<void>; deadlineMs: number } | undefined;
  let closing: Promise<void> | undefined;
  let markDrained: () => void = () => {};
  const drained = new Promise<void>((resolve) => (markDrained = resolve));
  const startDrain = (reason: string): { done: Promise<void>; deadlineMs: number } => {
    if (draining) return draining;
    const deadlineMs = Date.now() + config.drainTimeoutMs;
    manager.refuseNewPublishers(
      'this server is draining for a restart and takes no new streams; try again shortly (through the front door, another worker takes it)',
    );
    logger.info(
      { reason, sessions: manager.size + manager.starting, viewers: manager.viewerCount, timeoutMs: config.drainTimeoutMs },
      'draining',
    );
    const done = (async () => {
      // The record says `draining` at once, so no front door reserves a slot here any more.
      await registration?.beatNow();
      await waitForSessionsToEnd(sessions!, deadlineMs);
      const left = manager.size;
      if (left > 0) logger.warn({ sessions: left }, 'drain timeout: ending the sessions still live');
      else logger.info('drained: every session ended by itself');
      await close();
      markDrained();
    })();
    draining = { done, deadlineMs };
    return draining;
  };
  const app = await buildHttpApp({
    config,
    sessions,
    restyler,
    metrics,
    logger,
    slotArrived: (slot) => registration?.slotArrived(slot),
    drain: (reason) => {
      const { deadlineMs } = startDrain(reason);
      return { draining: true, sessions: manager.size + manager.starting, viewers: manager.viewerCount, deadlineMs };
    },
    draining: () => draining !== undefined,
  });
  const ws = attachWebSocketFallback(app.server, { config, restyler, sessions, logger });
  await app.listen({ host: config.host, port: config.port });
  const port = (app.server.address() as AddressInfo).port;
  const url = serverUrl(config, port);
  logger.info({ url, model: restyler.info.name, provider: restyler.info.provider }, 'serving');
  if (redis) {
    config.publicUrl ??= url;
    const id = `${new URL(config.publicUrl).host}-${process.pid}`;
    registration = new WorkerRegistration(
      redis,
      config.heartbeatMs,
      () => workerSnapshot(id, config, sessions, restyler, draining !== undefined),
      logger,
    );
    await registration.start();
    logger.info({ worker: id, publicUrl: config.publicUrl }, 'registered as a cluster worker');
  }
  // Hoisted: a drain (started by a request) closes the server, and requests come in once it listens.
  function close(): Promise<void> {
    return (closing ??= (async () => {
      // Leave the registry first, so the front door stops sending clients here.
      await registration?.stop().catch((err: Error) => logger.warn({ err: err.message }, 'could not leave the registry'));
      await redis?.quit().catch(() => redis.destroy());
      // Sessions first, so each client is told why (a WebSocket gets the reason and a close frame); then
      // whatever socket is left (one still opening) is cut.
      await manager.closeAll('server shutting down');
      await ws.close();
      await app.close();
      await restyler.close();
      metrics.close();
    })());
  }
  return {
    url,
    port,
    sessions,
    metrics,
    restyler,
    logger,
    drain: (reason) => startDrain(reason).done,
    drained,
    close,
  };
}

/** Resolves when no session is live or being set up, or at `deadlineMs`. Sessions end on their own (DELETE, media timeout). */
async function waitForSessionsToEnd(sessions: SessionManager, deadlineMs: number): Promise<void> {
  while (sessions.size + sessions.starting > 0 && Date.now() < deadlineMs) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(200, Math.max(1, deadlineMs - Date.now()))));
  }
}

/** What a worker tells the registry about itself (see cluster/registry.ts WorkerRecord). */
function workerSnapshot(
  id: string,
  config: ServerConfig,
  sessions: SessionManager,
  restyler: Restyler,
  draining: boolean,
): Omit<WorkerRecord, 'updatedAtMs'> {
  // Sessions still being set up count already: a heartbeat between the redirect and the session's start
  // must not make this worker look emptier than it is.
  const n = sessions.size + sessions.starting;
  const u = restyler.utilization();
  // The admission rule's prediction (realtime/admission.ts): today's load plus one more average session.
  const predicted = n === 0 ? u : u + u / n;
  const headroom = n >= config.maxSessions ? 0 : Math.max(0, config.admissionCeiling - predicted);
  return {
    id,
    url: config.publicUrl!,
    sessions: n,
    maxSessions: config.maxSessions,
    viewers: sessions.viewerCount,
    streams: sessions.streamNames(),
    headroom,
    model: restyler.info.name,
    clients: sessions.clientCounts(),
    draining,
  };
}
