// A short-lived, signed permission to make one request on a worker, carried in the URL the front door
// redirects to. Needed because browsers and Node's fetch drop the Authorization header when a redirect
// crosses origins (Fetch standard, "HTTP-redirect fetch"), so a token-protected cluster could not publish
// through its front door otherwise. The front door checks the Bearer token, then signs
// `method, path, expiry` with it (HMAC-SHA256); a worker started with the same token accepts the ticket in
// place of the header for that method and path until it expires, once.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TICKET_PARAM = 'sds_ticket';
/** Long enough for a client to follow the redirect, short enough that a leaked URL is soon useless. */
export const TICKET_TTL_MS = 30_000;

function signature(token: string, method: string, path: string, expiresMs: number): string {
  return createHmac('sha256', token).update(`${method.toUpperCase()}\n${path}\n${expiresMs}`).digest('base64url');
}

export function signTicket(token: string, method: string, path: string, nowMs = Date.now()): string {
  const expires = nowMs + TICKET_TTL_MS;
  return `${expires}.${signature(token, method, path, expires)}`;
}

/** Accepts each valid ticket once (a replayed redirect URL is refused), until it expires. */
export class TicketVerifier {
  private readonly used = new Map<string, number>();

  constructor(private readonly token: string) {}

  verify(method: string, path: string, ticket: string, nowMs = Date.now()): boolean {
    const dot = ticket.indexOf('.');
    const expires = Number(ticket.slice(0, dot));
    const presented = Buffer.from(ticket.slice(dot + 1));
    if (dot <= 0 || !Number.isSafeInteger(expires) || expires < nowMs || expires > nowMs + 2 * TICKET_TTL_MS) return false;
    const expected = Buffer.from(signature(this.token, method, path, expires));
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return false;
    for (const [t, exp] of this.used) if (exp < nowMs) this.used.delete(t);
    if (this.used.has(ticket)) return false;
    this.used.set(ticket, expires);
    return true;
  }
}
