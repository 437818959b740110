// WHIP/WHEP signalling over HTTP: one non-trickle offer/answer exchange that yields the session
// resource URL, and its teardown. Failures become SignalingError values whose message a user can act on.

export type SignalingFailure = 'unreachable' | 'full' | 'rejected' | 'not-found';

export class SignalingError extends Error {
  constructor(
    readonly kind: SignalingFailure,
    message: string,
    readonly status?: number,
    /** When the server is full: the moment it suggests retrying (from Retry-After). */
    readonly retryAt?: Date,
    /** The server's own words (the response body), when it gave any. */
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'SignalingError';
  }
}

/**
 * The API token for a server started with --token, taken from the page URL (`/?token=...`), or
 * undefined. Sent as `Authorization: Bearer` on every WHIP and session request.
 */
export function pageToken(): string | undefined {
  try {
    const token = new URLSearchParams(location.search).get('token');
    return token ? token : undefined;
  } catch {
    return undefined;
  }
}

/** Headers that carry the page's token, if any; merge them into every WHIP / session request. */
export function authHeaders(): Record<string, string> {
  const token = pageToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export interface SignaledSession {
  answerSdp: string;
  /** Absolute URL of the session resource (the response's Location). */
  resourceUrl: string;
}

/** Resolves once ICE gathering is complete (WHIP without trickle), or after `timeoutMs` with what was gathered. */
export function iceGatheringComplete(pc: RTCPeerConnection, timeoutMs = 3000): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', onChange);
      resolve();
    };
    const onChange = (): void => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', onChange);
  });
}

/** Creates the local offer, waits for all candidates, POSTs it and applies the answer. */
export async function negotiate(pc: RTCPeerConnection, endpoint: string): Promise<SignaledSession> {
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringComplete(pc);
  const offer = pc.localDescription;
  if (!offer) throw new Error('the browser produced no offer');
  const session = await postOffer(endpoint, offer.sdp);
  await pc.setRemoteDescription({ type: 'answer', sdp: session.answerSdp });
  return session;
}

export async function postOffer(endpoint: string, offerSdp: string): Promise<SignaledSession> {
  const url = new URL(endpoint, location.href);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Accept: 'application/sdp', ...authHeaders() },
      body: offerSdp,
    });
  } catch {
    throw new SignalingError('unreachable', `Cannot reach the server at ${url.host}. Check that it is running and try again.`);
  }
  if (response.status === 201) {
    const resource = response.headers.get('Location');
    if (!resource) throw new SignalingError('rejected', 'The server answered without a session Location header.', 201);
    // Relative to where the answer came from: behind a cluster's front door that is the worker the POST was
    // redirected to (307), not the URL it was sent to.
    return { answerSdp: await response.text(), resourceUrl: new URL(resource, response.url || url).href };
  }
  const reason = (await response.text().catch(() => '')).trim();
  if (response.status === 503) {
    const retryAt = parseRetryAfter(response.headers.get('Retry-After'));
    const when = retryAt ? ` Try again in ${formatWait(retryAt.getTime() - Date.now())}.` : ' Try again in a little while.';
    throw new SignalingError('full', `The server is full.${when}${reason ? ` (${reason})` : ''}`, 503, retryAt, reason);
  }
  if (response.status === 401 || response.status === 403) {
    throw new SignalingError(
      'rejected',
      response.status === 401
        ? 'This server needs an access token: open the page as /?token=<token>.'
        : 'The access token in the page URL (?token=...) is not valid for this server.',
      response.status,
      undefined,
      reason,
    );
  }
  if (response.status === 404) {
    throw new SignalingError('not-found', reason || `Nothing is published at ${url.pathname}.`, 404);
  }
  throw new SignalingError(
    'rejected',
    reason ? `The server refused the connection: ${reason}` : `The server refused the connection (HTTP ${response.status}).`,
    response.status,
  );
}

/** Ends a session resource. `keepalive` lets the request outlive the page (used on unload). */
export function deleteResource(resourceUrl: string, keepalive = false): Promise<void> {
  return fetch(resourceUrl, { method: 'DELETE', keepalive, headers: authHeaders() }).then(
    () => undefined,
    () => undefined, // the server may already be gone; nothing useful to tell the user
  );
}

/** Retry-After is either delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): Date | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return new Date(now + Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : new Date(date);
}

export function formatWait(ms: number): string {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  if (seconds < 90) return `${seconds}\u00a0s`;
  return `${Math.ceil(seconds / 60)}\u00a0min`;
}
