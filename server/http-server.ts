// What every HTTP surface of the server shares, whatever its role (a standalone server, a cluster
// worker, the front door): the Node server with request and idle timeouts, the SDP body parsers, CORS
// by configuration, Bearer-token auth, plain-text errors and 404s, and the static web app.
import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { LogController } from 'fastify';
import type { Logger } from 'pino';
import { PACKAGE_ROOT, type ServerConfig } from './config.js';
import { sendError } from './http-responses.js';
import { TICKET_PARAM, TicketVerifier } from './cluster/redirect-ticket.js';

export const CLIENT_DIR = path.join(PACKAGE_ROOT, 'dist', 'client', 'public');
export const MAX_SDP_BYTES = 64 * 1024;

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

export function createHttpApp(config: ServerConfig, logger: Logger) {
  const requestTimeout = config.requestTimeoutMs ?? 15_000;
  const app = Fastify({
    loggerInstance: logger,
    // Sessions log their own lifecycle; a line per HTTP request (metrics scrapes included) is noise.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 256 * 1024,
    // Slow clients must not hold sockets forever: a request must arrive in full within
    // requestTimeout (Node answers 408 and closes the socket), and an idle socket is closed after
    // CONNECTION_TIMEOUT_MS. Node only checks request deadlines every connectionsCheckingInterval
    // (30 s by default), so the server is created here with an interval matched to the timeout.
    serverFactory: (handler) => {
      const options: ServerOptions = {
        requestTimeout,
        headersTimeout: Math.min(60_000, requestTimeout),
        connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(requestTimeout / 4))),
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      };
      // With --tls-cert/--tls-key everything on this port is HTTPS, the WebSocket upgrade (wss:) included.
      const server = config.tls
        ? createHttpsServer({ ...options, cert: config.tls.cert, key: config.tls.key }, handler)
        : createServer(options, handler);
      server.setTimeout(CONNECTION_TIMEOUT_MS);
      return server;
    },
  });

  app.addContentTypeParser('application/trickle-ice-sdpfrag', { parseAs: 'string', bodyLimit: MAX_SDP_BYTES }, (_req, body, done) =>
    done(null, body),
  );
  app.addContentTypeParser('application/sdp', { parseAs: 'string', bodyLimit: MAX_SDP_BYTES }, (_req, body, done) => done(null, body));

  // CORS for browser clients on other origins (e.g. a player page): allowed origins come from
  // --cors-origin; none by default, so only same-origin pages can drive sessions.
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    if (!origin || !corsAllows(config.corsOrigins, origin)) return;
    void reply
      .header('Access-Control-Allow-Origin', config.corsOrigins.includes('*') ? '*' : origin)
      .header('Vary', 'Origin')
      .header('Access-Control-Allow-Methods', 'GET, POST, PATCH, DELETE, OPTIONS')
      .header('Access-Control-Allow-Headers', 'Content-Type, Authorization, If-Match')
      .header('Access-Control-Expose-Headers', 'Location, ETag, Link, Accept-Post, Retry-After');
    if (request.method === 'OPTIONS') return reply.code(204).send();
  });

  // Bearer-token auth (--token): checked before the body is read, so an unauthenticated client
  // cannot make the server parse an offer. CORS preflights (answered above) and OPTIONS stay open.
  const token = config.token;
  if (token !== undefined) {
    // A cluster worker also takes the front door's signed redirect ticket (cluster/redirect-ticket.ts).
    const tickets = config.role === 'worker' ? new TicketVerifier(token) : undefined;
    app.addHook('onRequest', async (request, reply) => {
      if (reply.sent || !needsToken(request.method, request.routeOptions.url)) return;
      const verdict = checkBearer(token, request.headers.authorization);
      if (verdict === 'ok') return;
      const ticket = (request.query as Record<string, unknown> | undefined)?.[TICKET_PARAM];
      if (tickets && typeof ticket === 'string' && tickets.verify(request.method, request.url.split('?')[0]!, ticket)) return;
      if (verdict === 'missing') {
        void reply.header('WWW-Authenticate', 'Bearer realm="sds"');
        return reply
          .code(401)
          .type('text/plain; charset=utf-8')
          .send('this endpoint needs `Authorization: Bearer <token>` (the server was started with --token)\n');
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

  return app;
}

export type HttpApp = ReturnType<typeof createHttpApp>;

/** The base URL the server prints and a worker registers: https when serving TLS; a wildcard host reads as localhost. */
export function serverUrl(config: Pick<ServerConfig, 'host' | 'tls'>, port: number): string {
  const host =
    config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return `${config.tls ? 'https' : 'http'}://${host}:${port}`;
}

/** The web app at `/` and the overlay page at `/overlay/<name>` (or a 503 saying how to build them). */
export async function registerWebApp(app: HttpApp): Promise<void> {
  if (existsSync(CLIENT_DIR)) {
    await app.register(fastifyStatic, { root: CLIENT_DIR, index: ['index.html'], wildcard: true });
    app.get('/overlay/:name', async (_request, reply) => reply.sendFile('overlay.html'));
  } else {
    app.get('/', async (_request, reply) => reply.code(503).type('text/plain').send('web app not built: run `npm run build`\n'));
  }
}

export function corsAllows(allowed: readonly string[], origin: string): boolean {
  return allowed.includes('*') || allowed.includes(origin);
}
