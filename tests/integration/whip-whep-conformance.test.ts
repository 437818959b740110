// WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) conformance of the real server: every status code and
// header a client relies on — 201 + Location + ETag + application/sdp, Link rel="ice-server", OPTIONS and
// CORS, 401/403, 404/405/409/415, DELETE — plus named streams and per-name parameters.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { iceServers, parseServeConfig } from '../../server/config.js';
import type { RunningServer } from '../../server/server.js';
import { SD_TINY_MODEL, startTestServer } from '../support/server-harness.js';
import { makeOffer, type OfferingPeer } from '../support/werift-offer.js';
import { startWhepViewer } from '../../bench/whep-viewer.js';

const TOKEN = 'conformance-secret';
const AUTH = { Authorization: `Bearer ${TOKEN}` };
const ORIGIN = 'https://player.example';
let server: RunningServer;
const peers: OfferingPeer[] = [];

before(async () => {
  server = await startTestServer({
    modelDir: SD_TINY_MODEL,
    token: TOKEN,
    corsOrigins: [ORIGIN],
    maxSessions: 4,
    maxSessionsPerClient: 4,
    iceServers: iceServers('stun:stun.example.net:3478,turn:alice:s3cr%22t@turn.example.net:3478?transport=udp'),
  });
});
after(async () => {
  for (const p of peers) await p.close();
  await server.close();
});

async function offer(): Promise<string> {
  const peer = await makeOffer({ codecs: ['VP8', 'H264'], audio: true });
  peers.push(peer);
  return peer.offer;
}

function post(
  path: string,
  body: string,
  headers: Record<string, string> = { ...AUTH, 'Content-Type': 'application/sdp' },
): Promise<Response> {
  return fetch(`${server.url}${path}`, { method: 'POST', headers, body });
}

function assertTextError(res: Response, status: number): void {
  assert.equal(res.status, status);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/, `a ${status} says why in text/plain`);
}

const ICE_LINKS = [
  '<stun:stun.example.net:3478>; rel="ice-server"',
  '<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="alice"; credential="s3cr\\"t"; credential-type="password"',
].join(', ');

describe('authorization (Bearer token, RFC 9725 §4.5)', () => {
  for (const path of ['/whip', '/whip/cam', '/whep/cam']) {
    test(`POST ${path} without a token is 401 with WWW-Authenticate, with a wrong one 403`, async () => {
      const none = await post(path, 'v=0', { 'Content-Type': 'application/sdp' });
      assertTextError(none, 401);
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
      const wrong = await post(path, 'v=0', { Authorization: 'Bearer nope', 'Content-Type': 'application/sdp' });
      assertTextError(wrong, 403);
    });
  }
  test('viewer, session and stream-parameter resources need the token too', async () => {
    for (const [method, path] of [
      ['DELETE', '/viewers/x'],
      ['GET', '/streams/cam/params'],
      ['PATCH', '/streams/cam/params'],
      ['DELETE', '/sessions/x'],
    ] as const) {
      assertTextError(await fetch(`${server.url}${path}`, { method }), 401);
    }
  });
});

describe('OPTIONS and CORS', () => {
  for (const path of ['/whip', '/whip/cam', '/whep/cam']) {
    test(`OPTIONS ${path}: 204, Accept-Post application/sdp, ICE servers only for an authorized request`, async () => {
      const open = await fetch(`${server.url}${path}`, { method: 'OPTIONS' });
      assert.equal(open.status, 204);
      assert.equal(open.headers.get('accept-post'), 'application/sdp');
      assert.equal(open.headers.get('link'), null, 'TURN credentials are not handed to anyone who asks');
      const authorized = await fetch(`${server.url}${path}`, { method: 'OPTIONS', headers: AUTH });
      assert.equal(authorized.headers.get('link'), ICE_LINKS);
    });
  }
  test('a CORS preflight from an allowed origin is answered and exposes Location, ETag and Link', async () => {
    const res = await fetch(`${server.url}/whep/cam`, {
      method: 'OPTIONS',
      headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type' },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), ORIGIN);
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    for (const h of ['Location', 'ETag', 'Link']) assert.match(res.headers.get('access-control-expose-headers') ?? '', new RegExp(h));
  });
  test('no CORS headers for another origin', async () => {
    const res = await fetch(`${server.url}/whep/cam`, { method: 'OPTIONS', headers: { Origin: 'https://evil.example' } });
    assert.equal(res.headers.get('access-control-allow-origin'), null);
  });
});

describe('named WHIP streams and WHEP viewers', () => {
  let sessionPath = '';

  test('POST /whip/<name>: 201, application/sdp answer, Location, quoted ETag, ICE-server Links', async () => {
    const res = await post('/whip/cam', await offer());
    assert.equal(res.status, 201, await res.clone().text());
    assert.equal(res.headers.get('content-type'), 'application/sdp');
    sessionPath = res.headers.get('location') ?? '';
    assert.match(sessionPath, /^\/sessions\/[A-Za-z0-9_-]{20,}$/);
    assert.match(res.headers.get('etag') ?? '', /^"[^"]+"$/);
    assert.equal(res.headers.get('link'), ICE_LINKS);
    assert.match(await res.text(), /^v=0/);
    const stats = (await (await fetch(`${server.url}${sessionPath}`, { headers: AUTH })).json()) as { name: string };
    assert.equal(stats.name, 'cam');
  });

  test('a second publisher for a live name is refused with 409 Conflict; the first keeps it', async () => {
    const res = await post('/whip/cam', await offer());
    assertTextError(res, 409);
    assert.match(await res.text(), /already has a live publisher/);
    assert.equal(server.sessions.byStreamName('cam')?.id, sessionPath.split('/').pop());
    const stream = (await (await fetch(`${server.url}/streams/cam`, { headers: AUTH })).json()) as { live: boolean; session: string };
    assert.deepEqual([stream.live, stream.session], [true, sessionPath], 'GET /streams/<name> names the session to DELETE');
  });

  test('stream names outside [A-Za-z0-9_.~-]{1,64} are refused with 400', async () => {
    assertTextError(await post('/whip/a%20b', await offer()), 400);
    assertTextError(await post(`/whep/${'x'.repeat(65)}`, 'v=0'), 400);
  });

  test('PATCH on a WHIP session resource is 405 with Allow (no trickle ICE, no ICE restart)', async () => {
    const res = await fetch(`${server.url}${sessionPath}`, {
      method: 'PATCH',
      headers: { ...AUTH, 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': '"x"' },
      body: 'a=ice-ufrag:abcd\r\na=ice-pwd:efghijklmnopqrstuvwxyz12\r\nm=video 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 UDP 1 127.0.0.1 9 typ host\r\n',
    });
    assertTextError(res, 405);
    assert.equal(res.headers.get('allow'), 'GET, DELETE');
  });

  test('WHEP: wrong content type 415, unknown stream 404, a sendonly offer 400', async () => {
    assertTextError(await post('/whep/cam', '{}', { ...AUTH, 'Content-Type': 'application/json' }), 415);
    const unknown = await post('/whep/nobody-here', await offer());
    assertTextError(unknown, 404);
    assert.match(await unknown.text(), /retry/);
    const sendonly = (await offer()).replace(/a=sendrecv/g, 'a=sendonly');
    const res = await post('/whep/cam', sendonly);
    assertTextError(res, 400);
    assert.match(await res.text(), /recvonly/);
  });

  test('POST /whep/<name>: 201 with answer, Location, ETag and Links; PATCH 405; DELETE 200 then 404', async () => {
    const viewer = await startWhepViewer({ whepUrl: `${server.url}/whep/cam`, token: TOKEN });
    try {
      assert.equal(viewer.headers.get('content-type'), 'application/sdp');
      assert.match(new URL(viewer.location).pathname, /^\/viewers\/[A-Za-z0-9_-]{20,}$/);
      assert.match(viewer.headers.get('etag') ?? '', /^"[^"]+"$/);
      assert.equal(viewer.headers.get('link'), ICE_LINKS);
      assert.match(viewer.answerSdp, /m=video[\s\S]*a=sendonly/);
      assert.equal(server.sessions.viewerCount, 1);
      const status = await fetch(viewer.location, { headers: AUTH });
      assert.equal(status.status, 200);
      assert.equal(((await status.json()) as { stream: string }).stream, 'cam');
      const patch = await fetch(viewer.location, {
        method: 'PATCH',
        headers: { ...AUTH, 'Content-Type': 'application/trickle-ice-sdpfrag' },
        body: 'a=end-of-candidates\r\n',
      });
      assertTextError(patch, 405);
      assert.equal(patch.headers.get('allow'), 'GET, DELETE');
      assert.equal((await fetch(viewer.location, { method: 'DELETE', headers: AUTH })).status, 200);
      assertTextError(await fetch(viewer.location, { method: 'DELETE', headers: AUTH }), 404);
      assertTextError(await fetch(viewer.location, { headers: AUTH }), 404);
      assert.equal(server.sessions.viewerCount, 0);
    } finally {
      await viewer.close({ deleteResource: false });
    }
  });

  test('plain POST /whip still works; its stream is named by its session id', async () => {
    const res = await post('/whip', await offer());
    assert.equal(res.status, 201);
    const id = res.headers.get('location')!.split('/').pop()!;
    assert.equal(server.sessions.byStreamName(id)?.id, id);
    assert.equal((await fetch(`${server.url}/sessions/${id}`, { method: 'DELETE', headers: AUTH })).status, 200);
  });

  test('DELETE ends the named stream (200); its name is free again and WHEP answers 404', async () => {
    assert.equal((await fetch(`${server.url}${sessionPath}`, { method: 'DELETE', headers: AUTH })).status, 200);
    assertTextError(await post('/whep/cam', await offer()), 404);
    assert.equal(server.sessions.byStreamName('cam'), undefined);
  });
});

describe('parameters per stream name', () => {
  const params = (name: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${server.url}/streams/${name}/params`, { ...init, headers: { ...AUTH, 'Content-Type': 'application/json', ...init.headers } });

  test('set before the publisher connects, applied when it arrives (the WHIP query still wins), and live after', async () => {
    const styles = server.restyler.info.styles;
    const before = (await (await params('later')).json()) as { strength: number };
    assert.equal(typeof before.strength, 'number', 'GET answers the defaults for a name not yet live');
    const set = await params('later', { method: 'PATCH', body: JSON.stringify({ strength: 0.25, steps: 2, seed: 9 }) });
    assert.equal(set.status, 200);
    assert.deepEqual(((await set.json()) as { strength: number }).strength, 0.25);

    const res = await post('/whip/later?seed=11', await offer());
    assert.equal(res.status, 201);
    const live = server.sessions.byStreamName('later')!;
    assert.deepEqual([live.engine.currentParams.strength, live.engine.currentParams.steps, live.engine.currentParams.seed], [0.25, 2, 11]);

    const patch = await params('later', {
      method: 'PATCH',
      body: JSON.stringify({ strength: 0.5, ...(styles[0] ? { style: styles[0] } : {}) }),
    });
    assert.equal(patch.status, 200);
    assert.equal(live.engine.currentParams.strength, 0.5, 'applied to the live stream at once');
    await fetch(`${server.url}${res.headers.get('location')}`, { method: 'DELETE', headers: AUTH });
  });

  test('bad values 400, a non-JSON body 415', async () => {
    const bad = await params('later', { method: 'PATCH', body: '{"strength":7}' });
    assertTextError(bad, 400);
    assert.match(await bad.text(), /strength/);
    assertTextError(await params('later', { method: 'PATCH', body: 'strength=1', headers: { 'Content-Type': 'text/plain' } }), 415);
  });
});

describe('--ice-server / ICE_SERVERS', () => {
  test('parses STUN and TURN URIs with credentials, from the flag or the environment', () => {
    assert.deepEqual(parseServeConfig(['--ice-server', 'stun:a.example:3478, turns:u:p@b.example:5349?transport=tcp'], {}).iceServers, [
      { url: 'stun:a.example:3478' },
      { url: 'turns:b.example:5349?transport=tcp', username: 'u', credential: 'p' },
    ]);
    assert.deepEqual(parseServeConfig([], { ICE_SERVERS: 'stun:c.example' }).iceServers, [{ url: 'stun:c.example' }]);
    assert.deepEqual(parseServeConfig([], {}).iceServers, []);
  });
  test('refuses an entry that is not a STUN/TURN URI, without echoing it (it may hold a password)', () => {
    assert.throws(
      () => parseServeConfig(['--ice-server', 'http://user:hunter2@x'], {}),
      (e: Error) => /--ice-server/.test(e.message) && !e.message.includes('hunter2'),
    );
  });
});
