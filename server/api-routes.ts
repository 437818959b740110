// The HTTP surface: WHIP ingest (plain and named), session resources, live and per-name parameters, WHEP
// playback (whep-routes.ts), the web app, health and metrics.
// Routes only translate HTTP to calls on the SessionManager and errors (values with a `status`) to
// status codes; no media logic lives here.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Restyler } from '../models/restyle-types.js';
import type { ServerConfig } from './config.js';
import { checkBearer, createHttpApp, registerWebApp } from './http-server.js';
import { hasContentType, httpError, sendError, withIceLinks } from './http-responses.js';
import type { ServerMetrics } from './metrics.js';
import type { SessionManager } from './sessions.js';
import { whepRoutes } from './whep-routes.js';
import { TICKET_PARAM } from './cluster/redirect-ticket.js';
import { SLOT_PARAM } from './cluster/registry.js';

// Shared with the cluster's front door; re-exported for the modules and tests that import them from here.
export { checkBearer, CLIENT_DIR, tokenMatches } from './http-server.js';

export interface HttpAppDeps {
  config: ServerConfig;
  sessions: SessionManager;
  restyler: Restyler;
  metrics: ServerMetrics;
  logger: Logger;
  /** A cluster worker: a redirected publisher brings the slot the front door reserved for it here. */
  slotArrived?(slot: string): void;
  /** Start draining (POST /admin/drain); returns at once with what is still live. */
  drain(reason: string): DrainStatus;
  /** Whether the server is draining. */
  draining(): boolean;
}

export interface DrainStatus {
  draining: true;
  sessions: number;
  viewers: number;
  /** When the sessions still live will be ended (epoch ms). */
  deadlineMs: number;
}

export async function buildHttpApp(deps: HttpAppDeps) {
  const { sessions, restyler, metrics } = deps;
  const app = createHttpApp(deps.config, deps.logger);

  app.get('/healthz', async () => ({ status: 'ok', sessions: sessions.size, model: restyler.info.name, draining: deps.draining() }));

  // Draining for a rolling restart (README "Scaling out"): behind the admin token, or off without one.
  app.post('/admin/drain', async (request, reply) => {
    const adminToken = deps.config.adminToken ?? deps.config.token;
    if (adminToken === undefined)
      return sendError(reply, httpError(403, 'the admin endpoints are off: start the server with --admin-token (or --token)'));
    const verdict = checkBearer(adminToken, request.headers.authorization);
    if (verdict !== 'ok') {
      void reply.header(
        'WWW-Authenticate',
        verdict === 'missing' ? 'Bearer realm="sds-admin"' : 'Bearer realm="sds-admin", error="invalid_token"',
      );
      return sendError(
        reply,
        httpError(
          verdict === 'missing' ? 401 : 403,
          'this endpoint needs `Authorization: Bearer <admin token>` (--admin-token, or --token without one)',
        ),
      );
    }
    return reply.code(202).send(deps.drain('POST /admin/drain'));
  });

  app.get('/metrics', async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get('/api/model', async () => {
    const info = restyler.info;
    const { width, height } = deps.config.resolution ?? info;
    return {
      name: info.name,
      width,
      height,
      conditioning: info.conditioning,
      styles: info.styles.map((id) => ({ id, label: info.styleLabels?.[id] ?? id })),
      steps: info.steps,
      defaults: info.defaults,
      provider: info.provider,
      budgetMs: deps.config.budgetMs,
    };
  });

  /** ICE servers go only to requests that may publish or play: TURN credentials are secrets. */
  const authorized = (request: FastifyRequest): boolean =>
    deps.config.token === undefined || checkBearer(deps.config.token, request.headers.authorization) === 'ok';

  // WHIP ingest. `/whip/<name>` publishes under a stable name (OBS's fixed URL; viewers play /whep/<name>);
  // plain `/whip` publishes under the session's id. Initial parameters may ride on the URL (e.g.
  // /whip/main?style=sketch&strength=0.5): a publisher like OBS has only a URL to configure.
  const publish = async (request: FastifyRequest, reply: FastifyReply, name: string | undefined): Promise<FastifyReply> => {
    if (!hasContentType(request.headers, 'application/sdp')) {
      return sendError(reply, httpError(415, 'WHIP offers must have Content-Type: application/sdp'));
    }
    // The front door reserved a slot for this publisher; from here on this worker's own count holds it.
    const slot = (request.query as Record<string, unknown> | undefined)?.[SLOT_PARAM];
    if (typeof slot === 'string') deps.slotArrived?.(slot);
    const offer = request.body;
    if (typeof offer !== 'string' || offer.trim() === '') return sendError(reply, httpError(400, 'empty SDP offer'));
    const session = await sessions.create(offer, queryToParams(request.query), request.socket.remoteAddress ?? request.ip, name);
    return (
      withIceLinks(reply, deps.config.iceServers)
        .code(201)
        // A cluster worker answers with an absolute URL: the client reached it through the front door's redirect.
        .header('Location', `${deps.config.publicUrl ?? ''}/sessions/${session.id}`)
        .header('ETag', `"${session.id}"`)
        .type('application/sdp')
        .send(session.publisher.answerSdp)
    );
  };
  app.post('/whip', async (request, reply) => publish(request, reply, undefined));
  app.post<{ Params: { name: string } }>('/whip/:name', async (request, reply) => publish(request, reply, request.params.name));

  // RFC 9725 §4.1: OPTIONS on the WHIP endpoint says what it accepts (and answers CORS preflights).
  const whipOptions = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    if (authorized(request)) withIceLinks(reply, deps.config.iceServers);
    return reply.code(204).header('Accept-Post', 'application/sdp').send();
  };
  app.options('/whip', whipOptions);
  app.options('/whip/:name', whipOptions);

  // Trickle ICE and ICE restarts (PATCH with application/trickle-ice-sdpfrag) are not supported: the
  // server gathers all its candidates before answering and clients (OBS, GStreamer, the pages here) send
  // complete offers. RFC 9725 §4.3.1: a resource that supports PATCH for neither answers 405, with Allow.
  app.patch<{ Params: { id: string } }>('/sessions/:id', async (request, reply) => {
    if (!sessions.get(request.params.id)) return sendError(reply, notFound());
    void reply.header('Allow', 'GET, DELETE');
    return sendError(reply, httpError(405, 'trickle ICE and ICE restarts are not supported; send a complete offer'));
  });

  app.delete<{ Params: { id: string } }>('/sessions/:id', async (request, reply) => {
    const closed = await sessions.close(request.params.id, 'DELETE by client');
    if (!closed) return sendError(reply, notFound());
    return reply.code(200).send();
  });

  app.get<{ Params: { id: string } }>('/sessions/:id', async (request, reply) => {
    const session = sessions.get(request.params.id);
    if (!session) return sendError(reply, notFound());
    return { ...session.stats(), params: session.engine.currentParams };
  });

  app.get<{ Params: { id: string } }>('/sessions/:id/params', async (request, reply) => {
    const session = sessions.get(request.params.id);
    if (!session) return sendError(reply, notFound());
    return session.engine.currentParams;
  });

  app.patch<{ Params: { id: string } }>('/sessions/:id/params', async (request, reply) => {
    const session = sessions.get(request.params.id);
    if (!session) return sendError(reply, notFound());
    return session.updateParams(request.body);
  });

  // Parameters per stream name, settable before the publisher connects: stored and applied when it arrives
  // (the WHIP URL's query still wins), and applied at once to the live stream of that name.
  app.get<{ Params: { name: string } }>('/streams/:name', async (request) => {
    const { live } = sessions.streamParams(request.params.name);
    const session = sessions.byStreamName(request.params.name);
    // The session resource lets an operator end a publisher that vanished without DELETE (a 409 for the next one).
    return { name: request.params.name, live, session: session ? `/sessions/${session.id}` : null, viewers: session?.viewers.size ?? 0 };
  });
  app.get<{ Params: { name: string } }>('/streams/:name/params', async (request) => sessions.streamParams(request.params.name).params);
  app.patch<{ Params: { name: string } }>('/streams/:name/params', async (request, reply) => {
    if (!hasContentType(request.headers, 'application/json')) {
      return sendError(reply, httpError(415, 'send the parameters as JSON (Content-Type: application/json)'));
    }
    return sessions.patchStreamParams(request.params.name, request.body).params;
  });

  await app.register(whepRoutes({ config: deps.config, sessions, authorized }));

  await registerWebApp(app);

  return app;
}

/** Query-string values are strings; give numbers and booleans their types so validation can judge them. */
function queryToParams(query: unknown): Record<string, unknown> | undefined {
  if (typeof query !== 'object' || query === null) return undefined;
  // The front door's redirect ticket and slot reservation are for the cluster, not parameters.
  const entries = Object.entries(query as Record<string, unknown>).filter(([key]) => key !== TICKET_PARAM && key !== SLOT_PARAM);
  if (entries.length === 0) return undefined;
  return Object.fromEntries(
    entries.map(([key, value]) => {
      if (typeof value !== 'string') return [key, value];
      if (value === 'true' || value === 'false') return [key, value === 'true'];
      if (key !== 'style' && key !== 'prompt' && value.trim() !== '' && Number.isFinite(Number(value))) return [key, Number(value)];
      return [key, value];
    }),
  );
}

function notFound(): Error & { status: number } {
  return httpError(404, 'no such session (it ended, or the id is wrong)');
}
