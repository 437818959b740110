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
import { connectRedis, WorkerRegistration } from './cluster/registry.js';

export interface RunningServer {
  url: string;
  port: number;
  sessions: SessionManager;
  metrics: ServerMetrics;
  restyler: Restyler;
  logger: Logger;
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

export async function startServer(given: ServerConfig, logger = createLogger(given.logLevel), deps: ServerDependencies = {}): Promise<RunningServer> {
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
  sessions = new SessionManager(config, restyler, metrics, logger, deps.openEncoder);
  const app = await buildHttpApp({ config, sessions, restyler, metrics, logger });
  const ws = attachWebSocketFallback(app.server, { config, restyler, sessions, logger });
  await app.listen({ host: config.host, port: config.port });
  const port = (app.server.address() as AddressInfo).port;
  const url = serverUrl(config, port);
  logger.info({ url, model: restyler.info.name, provider: restyler.info.provider }, 'serving');
  let registration: WorkerRegistration | undefined;
  if (redis) {
    config.publicUrl ??= url;
    const id = `${new URL(config.publicUrl).host}-${process.pid}`;
    registration = new WorkerRegistration(redis, config.heartbeatMs, () => workerSnapshot(id, config, sessions, restyler), logger);
    await registration.start();
    logger.info({ worker: id, publicUrl: config.publicUrl }, 'registered as a cluster worker');
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    sessions,
    metrics,
    restyler,
    logger,
    close: () =>
      (closing ??= (async () => {
        // Leave the registry first, so the front door stops sending clients here.
        await registration?.stop().catch((err: Error) => logger.warn({ err: err.message }, 'could not leave the registry'));
        await redis?.quit().catch(() => redis.destroy());
        await ws.close();
        await sessions.closeAll('server shutting down');
        await app.close();
        await restyler.close();
        metrics.close();
      })()),
  };
}

/** What a worker tells the registry about itself (see cluster/registry.ts WorkerRecord). */
function workerSnapshot(id: string, config: ServerConfig, sessions: SessionManager, restyler: Restyler) {
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
  };
}
