// The front door (`serve --role front`): one public URL in front of many workers. It holds no state of its
// own: every decision reads the registry in Redis. WHIP publishers are redirected (307, RFC 9725 §4.5) to
// the worker with the most room; WHEP viewers and per-stream requests to the worker that holds the stream.
// It also serves the web app and overlay pages, whose WHIP/WHEP requests it redirects like any client's.
import type { AddressInfo } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.js';
import { checkBearer, createHttpApp, registerWebApp, serverUrl } from '../http-server.js';
import { httpError, sendError } from '../http-responses.js';
import { signTicket, TICKET_PARAM } from './redirect-ticket.js';
import { chooseWorker, connectRedis, RegistryReader, type WorkerRecord } from './registry.js';

export interface RunningFrontDoor {
  url: string;
  port: number;
  registry: RegistryReader;
  close(): Promise<void>;
}

/** Seconds a refused publisher should wait: about when the workers' next reports will be in. */
const RETRY_AFTER_S = 2;

export async function startFrontDoor(config: ServerConfig, logger: Logger): Promise<RunningFrontDoor> {
  const redis = await connectRedis(config.redisUrl!, logger);
  const registry = new RegistryReader(redis);
  const app = createHttpApp(config, logger);

  // 307 keeps the method and body (the SDP offer); the worker answers with an absolute Location. With a
  // token, the URL carries a signed ticket: clients drop Authorization on a cross-origin redirect.
  const redirect = (reply: FastifyReply, worker: WorkerRecord, request: FastifyRequest): FastifyReply => {
    const target = new URL(request.url, worker.url);
    if (config.token !== undefined) target.searchParams.set(TICKET_PARAM, signTicket(config.token, request.method, target.pathname));
    return reply.code(307).header('Location', target.href).header('Cache-Control', 'no-store').send();
  };
  const noWorker = (reply: FastifyReply): FastifyReply => {
    void reply.header('Retry-After', String(RETRY_AFTER_S));
    return sendError(reply, httpError(503, 'no worker has room for another stream; try again shortly'));
  };

  const publish = async (request: FastifyRequest, reply: FastifyReply, name?: string): Promise<FastifyReply> => {
    // A name already live stays with its worker, which answers (409) for a second publisher itself.
    const holder = name === undefined ? undefined : await registry.holderOf(name);
    if (holder) return redirect(reply, holder, request);
    const target = chooseWorker(await registry.workers());
    if (!target) return noWorker(reply);
    await registry.claim(target.id, config.heartbeatMs);
    logger.info({ worker: target.id, stream: name }, 'publisher sent to worker');
    return redirect(reply, target, request);
  };
  app.post('/whip', async (request, reply) => publish(request, reply));
  app.post<{ Params: { name: string } }>('/whip/:name', async (request, reply) => publish(request, reply, request.params.name));
  const whipOptions = async (_request: FastifyRequest, reply: FastifyReply) => reply.code(204).header('Accept-Post', 'application/sdp').send();
  app.options('/whip', whipOptions);
  app.options('/whip/:name', whipOptions);

  // Everything addressed by stream name goes where the stream is.
  const toHolder = async (request: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply): Promise<FastifyReply> => {
    const holder = await registry.holderOf(request.params.name);
    if (!holder) return sendError(reply, httpError(404, `no live stream named "${request.params.name}"`));
    return redirect(reply, holder, request);
  };
  app.post<{ Params: { name: string } }>('/whep/:name', toHolder);
  app.options('/whep/:name', async (_request, reply) => reply.code(204).header('Accept-Post', 'application/sdp').send());
  app.get<{ Params: { name: string } }>('/streams/:name', toHolder);
  app.get<{ Params: { name: string } }>('/streams/:name/params', toHolder);
  app.patch<{ Params: { name: string } }>('/streams/:name/params', toHolder);

  // The web app asks for the model's description before it publishes: any worker can answer.
  app.get('/api/model', async (request, reply) => {
    const any = chooseWorker(await registry.workers()) ?? (await registry.workers())[0];
    return any ? redirect(reply, any, request) : noWorker(reply);
  });

  /** Worker URLs are for operators: behind the token when one is set. */
  app.get('/api/cluster', async (request, reply) => {
    if (config.token !== undefined && checkBearer(config.token, request.headers.authorization) !== 'ok') return sendError(reply, httpError(401, 'this endpoint needs the bearer token'));
    return { workers: await registry.workers() };
  });
  app.get('/healthz', async () => ({ status: 'ok', role: 'front', workers: (await registry.workers()).length }));

  await registerWebApp(app);
  await app.listen({ host: config.host, port: config.port });
  const port = (app.server.address() as AddressInfo).port;
  const url = serverUrl(config, port);
  logger.info({ url, redis: config.redisUrl?.replace(/\/\/[^@]*@/, '//***@') }, 'front door serving');
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    registry,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await redis.quit().catch(() => redis.destroy());
      })()),
  };
}
