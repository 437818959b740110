// How the HTTP layer answers: errors (values with a `status`) become a status code and a text/plain sentence,
// and the WHIP/WHEP headers every ingest and playback endpoint shares (Accept-Post, Link rel="ice-server").
import type { FastifyReply } from 'fastify';
import { ParamsError } from '../realtime/params.js';
import type { IceServerConfig } from './config.js';
import { CapacityError } from './sessions.js';

export function httpError(status: number, message: string): Error & { status: number } {
  return Object.assign(new Error(message), { status });
}

export function sendError(
  reply: FastifyReply,
  error: Error & { status?: number; statusCode?: number; retryAfterSeconds?: number },
): FastifyReply {
  let status = error.status ?? error.statusCode ?? 500;
  if (error instanceof ParamsError) status = 400;
  // A refusal that says when to come back (a full server, an unreachable registry) is for the user, not a fault.
  const retryable = error instanceof CapacityError || typeof error.retryAfterSeconds === 'number';
  if (retryable) void reply.header('Retry-After', String(error.retryAfterSeconds));
  if (status >= 500 && !retryable && status !== 507) {
    reply.log.error({ err: error }, 'request failed');
  }
  const message = status >= 500 && !retryable && status !== 507 ? 'internal error (see server log)' : error.message;
  return reply.code(status).type('text/plain; charset=utf-8').send(`${message}\n`);
}

/** Is the request's Content-Type `type` (parameters such as charset ignored)? */
export function hasContentType(headers: Record<string, string | string[] | undefined>, type: string): boolean {
  const value = headers['content-type'];
  return typeof value === 'string' && value.split(';')[0]!.trim().toLowerCase() === type;
}

/**
 * RFC 9725 §4.6 (and the WHEP draft, which reuses it): one `Link: <uri>; rel="ice-server"` per configured
 * STUN/TURN server, with TURN credentials as link parameters. Only for authorized requests: they carry secrets.
 */
export function iceServerLinks(servers: readonly IceServerConfig[]): string[] {
  return servers.map((s) => {
    let link = `<${s.url}>; rel="ice-server"`;
    if (s.username !== undefined && s.credential !== undefined) {
      link += `; username="${quote(s.username)}"; credential="${quote(s.credential)}"; credential-type="password"`;
    }
    return link;
  });
}

/** An RFC 8288 quoted-string body. */
function quote(value: string): string {
  return value.replace(/["\\]/g, (c) => `\\${c}`);
}

/** Adds the Link headers for ICE servers, if any are configured. */
export function withIceLinks(reply: FastifyReply, servers: readonly IceServerConfig[]): FastifyReply {
  const links = iceServerLinks(servers);
  if (links.length > 0) void reply.header('Link', links);
  return reply;
}
