// The HTTP surface: WHIP ingest (plain and named), session resources, live and per-name parameters, WHEP
// playback (whep-routes.ts), the web app, health and metrics.
// Routes only translate HTTP to calls on the SessionManager and errors (values with a `status`) to
// status codes; no media logic lives here.
import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Restyler } from '../models/restyle-types.js';
import { PACKAGE_ROOT, type ServerConfig } from './config.js';
import { hasContentType, httpError, sendError, withIceLinks } from './http-responses.js';
import type { ServerMetrics } from './metrics.js';
import type { SessionManager } from './sessions.js';
import { whepRoutes } from './whep-routes.js';

export const CLIENT_DIR = path.join(PACKAGE_ROOT, 'dist', 'client', 'public');
const MAX_SDP_BYTES = 64 * 1024;

export interface HttpAppDeps {
  config: ServerConfig;
  sessions: SessionManager;
  restyler: Restyler;
  metrics: ServerMetrics;
  logger: Logger;
}

/** Socket idle timeout: a connection that sends nothing for this long is closed. */
const CONNECTION_TIMEOUT_MS = 30_000;
const KEEP_ALIVE_TIMEOUT_MS = 72_000;

/**
 * Bearer-token check (RFC 9725 §4.5; RFC 6750). 'missing' when no Bearer credentials were presented,
 * 'wrong' when they do not match. Both sides are hashed first so the comparison is constant-time and
 * its duration does not depend on (or reveal) the token's length.
 */
export function checkBearer(expected: string, authorization: string | undefined): 'ok' | 'missing' | 'wrong' {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
  if (!match) return 'missing';
  return tokenMatches(expected, match[1]!) ? 'ok' : 'wrong';
}

export function tokenMatches(expected: string, presented: string): boolean {
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(presented, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/**
 * Routes that need the token when one is configured: ingest, playback, and everything about a session, a
 * viewer or a stream's parameters. OPTIONS stays open (CORS preflights cannot carry credentials).
 */
const PROTECTED_PREFIXES = ['/whip', '/whep', '/sessions', '/viewers', '/streams'];
function needsToken(method: string, route: string | undefined): boolean {
  if (route === undefined || method === 'OPTIONS') return false;
  return PROTECTED_PREFIXES.some((p) => route === p || route.startsWith(`${p}/`));
}

export async function buildHttpApp(deps: HttpAppDeps) {
  const { sessions, restyler, metrics } = deps;
  const requestTimeout = deps.config.requestTimeoutMs ?? 15_000;
  const app = Fastify({
    loggerInstance: deps.logger,
    // Sessions log their own lifecycle; a line per HTTP request (metrics scrapes included) is noise.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 256 * 1024,
    // Slow clients must not hold sockets forever: a request must arrive in full within
    // requestTimeout (Node answers 408 and closes the socket), and an idle socket is closed after
    // CONNECTION_TIMEOUT_MS. Node only checks request deadlines every connectionsCheckingInterval
    // (30 s by default), so the server is created here with an interval matched to the timeout.
    serverFactory: (handler) => {
      const server = createServer(
        {
          requestTimeout,
          headersTimeout: Math.min(60_000, requestTimeout),
          connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(requestTimeout / 4))),
          keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
        },
        handler,
      );
      server.setTimeout(CONNECTION_TIMEOUT_MS);
      return server;
    },
  });

  app.addContentTypeParser('application/trickle-ice-sdpfrag', { parseAs: 'string', bodyLimit: MAX_SDP_BYTES }, (_req, body, done) =>
    done(null, body),
  );
  app.addContentTypeParser('application/sdp', { parseAs: 'string', bodyLimit: MAX_SDP_BYTES }, (_req, body, done) =>
    done(null, body),
  );

  // CORS for browser clients on other origins (e.g. a player page): allowed origins come from
  // --cors-origin; none by default, so only same-origin pages can drive sessions.
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    if (!origin || !corsAllows(deps.config.corsOrigins, origin)) return;
    void reply
      .header('Access-Control-Allow-Origin', deps.config.corsOrigins.includes('*') ? '*' : origin)
      .header('Vary', 'Origin')
      .header('Access-Control-Allow-Methods', 'GET, POST, PATCH, DELETE, OPTIONS')
      .header('Access-Control-Allow-Headers', 'Content-Type, Authorization, If-Match')
      .header('Access-Control-Expose-Headers', 'Location, ETag, Link, Accept-Post, Retry-After');
    if (request.method === 'OPTIONS') return reply.code(204).send();
  });

  // Bearer-token auth (--token): checked before the body is read, so an unauthenticated client
  // cannot make the server parse an offer. CORS preflights (answered above) and OPTIONS stay open.
  const token = deps.config.token;
  if (token !== undefined) {
    app.addHook('onRequest', async (request, reply) => {
      if (reply.sent || !needsToken(request.method, request.routeOptions.url)) return;
      const verdict = checkBearer(token, request.headers.authorization);
      if (verdict === 'ok') return;
      if (verdict === 'missing') {
        void reply.header('WWW-Authenticate', 'Bearer realm="sds"');
        return reply.code(401).type('text/plain; charset=utf-8').send('this endpoint needs `Authorization: Bearer <token>` (the server was started with --token)\n');
      }
      void reply.header('WWW-Authenticate', 'Bearer realm="sds", error="invalid_token"');
      return reply.code(403).type('text/plain; charset=utf-8').send('the bearer token is not valid for this server\n');
    });
  }

  app.setErrorHandler((error: Error & { status?: number; statusCode?: number }, _request, reply) => {
    sendError(reply, error);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).type('text/plain; charset=utf-8').send(`no such resource: ${request.method} ${request.url}\n`);
  });

  app.get('/healthz', async () => ({ status: 'ok', sessions: sessions.size, model: restyler.info.name }));

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
    const offer = request.body;
    if (typeof offer !== 'string' || offer.trim() === '') return sendError(reply, httpError(400, 'empty SDP offer'));
    const session = await sessions.create(offer, queryToParams(request.query), request.socket.remoteAddress ?? request.ip, name);
    return withIceLinks(reply, deps.config.iceServers)
      .code(201)
      .header('Location', `/sessions/${session.id}`)
      .header('ETag', `"${session.id}"`)
      .type('application/sdp')
      .send(session.publisher.answerSdp);
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

  if (existsSync(CLIENT_DIR)) {
    await app.register(fastifyStatic, { root: CLIENT_DIR, index: ['index.html'], wildcard: true });
    app.get('/overlay/:name', async (_request, reply) => reply.sendFile('overlay.html'));
  } else {
    app.get('/', async (_request, reply) =>
      reply.code(503).type('text/plain').send('web app not built: run `npm run build`\n'),
    );
  }

  return app;
}

/** Query-string values are strings; give numbers and booleans their types so validation can judge them. */
function queryToParams(query: unknown): Record<string, unknown> | undefined {
  if (typeof query !== 'object' || query === null) return undefined;
  const entries = Object.entries(query as Record<string, unknown>);
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

function corsAllows(allowed: readonly string[], origin: string): boolean {
  return allowed.includes('*') || allowed.includes(origin);
}

function notFound(): Error & { status: number } {
  return httpError(404, 'no such session (it ended, or the id is wrong)');
}
