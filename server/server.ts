// Composition root: load the model runtime, create metrics and sessions, serve HTTP. `close()` tears
// everything down in reverse order, so tests and the benchmark can run servers in-process.
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { ModelRuntime } from '../models/model-runtime.js';
import type { Restyler } from '../models/restyle-types.js';
import type { ServerConfig } from './config.js';
import { buildHttpApp } from './http-app.js';
import { ServerMetrics } from './metrics.js';
import { SessionManager } from './sessions.js';
import { attachWebSocketFallback } from './websocket-fallback.js';

export interface RunningServer {
  url: string;
  port: number;
  sessions: SessionManager;
  metrics: ServerMetrics;
  restyler: Restyler;
  logger: Logger;
  close(): Promise<void>;
}

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'sds' } });
}

export async function startServer(config: ServerConfig, logger = createLogger(config.logLevel)): Promise<RunningServer> {
  const restyler = await ModelRuntime.load({
    modelDir: config.modelDir,
    provider: config.provider,
    fallbackToCpu: config.fallbackToCpu,
    workers: config.workers,
    intraOpThreads: config.intraOpThreads,
    logger,
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
  sessions = new SessionManager(config, restyler, metrics, logger);
  const app = await buildHttpApp({ config, sessions, restyler, metrics, logger });
  const ws = attachWebSocketFallback(app.server, { config, restyler, sessions, logger });
  await app.listen({ host: config.host, port: config.port });
  const port = (app.server.address() as AddressInfo).port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${host}:${port}`;
  logger.info({ url, model: restyler.info.name, provider: restyler.info.provider }, 'serving');
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
        await ws.close();
        await sessions.closeAll('server shutting down');
        await app.close();
        await restyler.close();
        metrics.close();
      })()),
  };
}
