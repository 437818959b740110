// The front door (`serve --role front`): one public URL in front of many workers. It holds no state of its
// own: every decision reads the registry in Redis, so any number of front doors give the same answers.
// WHIP publishers are redirected (307, RFC 9725 §4.5) to a slot reserved atomically on the worker with the
// most room; WHEP viewers and per-stream requests to the worker that holds the stream (from the last known
// registry while Redis is briefly away). It also serves the web app and overlay pages.
import type { AddressInfo } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.js';
import { checkBearer, createHttpApp, registerWebApp, serverUrl } from '../http-server.js';
import { httpError, sendError } from '../http-responses.js';
import { signTicket, TICKET_PARAM } from './redirect-ticket.js';
import { connectRedis, RegistryReader, SLOT_PARAM, type WorkerRecord } from './registry.js';

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
  const registry = new RegistryReader(redis, config.registryGraceMs, logger);
  registry.startRefreshing(config.heartbeatMs);
  const app = createHttpApp(config, logger);

  // 307 keeps the method and body (the SDP offer); the worker answers with an absolute Location. With a
  // token, the URL carries a signed ticket: clients drop Authorization on a cross-origin redirect.
  const redirect = (reply: FastifyReply, worker: WorkerRecord, request: FastifyRequest, slot?: string): FastifyReply => {
    const target = new URL(request.url, worker.url);
    if (config.token !== undefined) target.searchParams.set(TICKET_PARAM, signTicket(config.token, request.method, target.pathname));
    if (slot !== undefined) target.searchParams.set(SLOT_PARAM, slot);
    return reply.code(307).header('Location', target.href).header('Cache-Control', 'no-store').send();
  };
  const refuse = (reply: FastifyReply, message: string, retryAfterSeconds = RETRY_AFTER_S): FastifyReply =>
    sendError(reply, Object.assign(httpError(503, message), { retryAfterSeconds }));

  const publish = async (request: FastifyRequest, reply: FastifyReply, name?: string): Promise<FastifyReply> => {
    let reservation;
    try {
      reservation = await registry.reserve(request.socket.remoteAddress ?? request.ip, config.maxSessionsPerClient, name);
    } catch (err) {
      // A slot must be reserved in the shared registry, or two front doors could fill one worker twice.
      logger.warn({ err: (err as Error).message }, 'cannot reserve a slot: the registry is unreachable');
      return refuse(reply, 'the cluster registry is unreachable, so no slot can be reserved; try again shortly');
    }
    switch (reservation.kind) {
      case 'holder':
        // A name already live stays with its worker, which answers (409) for a second publisher itself.
        return redirect(reply, reservation.worker, request);
      case 'worker':
        logger.info({ worker: reservation.worker.id, stream: name }, 'publisher sent to worker');
        return redirect(reply, reservation.worker, request, reservation.slot);
      case 'client-limit':
        return refuse(
          reply,
          `too many sessions from your address: it already holds ${reservation.held} live sessions in this cluster (limit set by --max-sessions-per-client); end one (DELETE) or retry later`,
          10,
        );
      default:
        return refuse(reply, 'no worker has room for another stream; try again shortly');
    }
  };
  app.post('/whip', async (request, reply) => publish(request, reply));
  app.post<{ Params: { name: string } }>('/whip/:name', async (request, reply) => publish(request, reply, request.params.name));
  const whipOptions = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.code(204).header('Accept-Post', 'application/sdp').send();
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
    const workers = await registry.workers();
    const any = workers.find((w) => !w.draining) ?? workers[0];
    return any ? redirect(reply, any, request) : refuse(reply, 'no worker is registered; try again shortly');
  });

  /** Worker URLs are for operators: behind the token when one is set. */
  app.get('/api/cluster', async (request, reply) => {
    if (config.token !== undefined && checkBearer(config.token, request.headers.authorization) !== 'ok')
      return sendError(reply, httpError(401, 'this endpoint needs the bearer token'));
    // Client addresses (kept per worker for the per-client limit) are not for anyone's eyes: counts only.
    return { workers: (await registry.workers()).map(({ clients, ...w }) => ({ ...w, clients: Object.keys(clients ?? {}).length })) };
  });
  app.get('/healthz', async () => {
    const workers = await registry.workers();
    return { status: 'ok', role: 'front', workers: workers.length, draining: workers.filter((w) => w.draining).length };
  });

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
        registry.stop();
        await app.close();
        await redis.quit().catch(() => redis.destroy());
      })()),
  };
}
