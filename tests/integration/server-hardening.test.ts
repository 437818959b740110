// Hardening of the HTTP surface: bearer-token auth, the per-client session cap, static path
// traversal, body limits and slow clients. Real server, real werift offers, the tiny model.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { WebSocket } from 'ws';
import { parseServeConfig } from '../../server/config.js';
import { checkBearer, tokenMatches } from '../../server/api-routes.js';
import { startServer, type RunningServer } from '../../server/server.js';
import { liveResources } from '../../stream/resource-counters.js';
import { SD_TINY_MODEL, startTestServer } from '../support/server-harness.js';
import { makeOffer } from '../support/werift-offer.js';

const TOKEN = 's3cret-Token_0123456789';

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/whip`, { method: 'POST', headers: { 'Content-Type': 'application/sdp', ...headers }, body });
}

/** Sends raw bytes on a fresh socket; resolves with what came back and how long until the server closed it. */
function rawExchange(port: number, data: string, waitMs: number): Promise<{ text: string; closedAfterMs: number | undefined }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let closedAfterMs: number | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closedAfterMs });
    }, waitMs);
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closedAfterMs = Date.now() - started;
      clearTimeout(timer);
      resolve({ text, closedAfterMs });
    });
    socket.write(data);
  });
}

describe('config', () => {
  test('--token, --max-sessions-per-client and --request-timeout-ms parse from flags and env', () => {
    const c = parseServeConfig(['--token', 'abc', '--max-sessions-per-client', '3', '--request-timeout-ms', '2000'], {});
    assert.equal(c.token, 'abc');
    assert.equal(c.maxSessionsPerClient, 3);
    assert.equal(c.requestTimeoutMs, 2000);
    const d = parseServeConfig([], { TOKEN: 'xyz', MAX_SESSIONS_PER_CLIENT: '1' });
    assert.equal(d.token, 'xyz');
    assert.equal(d.maxSessionsPerClient, 1);
    const none = parseServeConfig([], {});
    assert.equal(none.token, undefined);
    assert.equal(none.maxSessionsPerClient, 2);
    assert.equal(none.requestTimeoutMs, 15_000);
    assert.throws(
      () => parseServeConfig(['--token', 'has space'], {}),
      (e: Error) => !e.message.includes('has space'),
    );
  });

  test('bearer checks: missing, wrong (any length), right', () => {
    assert.equal(checkBearer(TOKEN, undefined), 'missing');
    assert.equal(checkBearer(TOKEN, `Basic ${TOKEN}`), 'missing');
    assert.equal(checkBearer(TOKEN, 'Bearer'), 'missing');
    assert.equal(checkBearer(TOKEN, 'Bearer x'), 'wrong');
    assert.equal(checkBearer(TOKEN, `Bearer ${TOKEN}x`), 'wrong');
    assert.equal(checkBearer(TOKEN, `Bearer ${TOKEN.slice(0, -1)}`), 'wrong');
    assert.equal(checkBearer(TOKEN, `Bearer ${'a'.repeat(10_000)}`), 'wrong');
    assert.equal(checkBearer(TOKEN, `Bearer ${TOKEN}`), 'ok');
    assert.equal(checkBearer(TOKEN, `bearer  ${TOKEN}`), 'ok');
    assert.equal(tokenMatches(TOKEN, TOKEN), true);
    assert.equal(tokenMatches(TOKEN, ''), false);
  });
});

describe('with --token', () => {
  let server: RunningServer;
  const logLines: string[] = [];

  before(async () => {
    const config = {
      ...parseServeConfig([], {}),
      host: '127.0.0.1',
      port: 0,
      intraOpThreads: 2,
      modelDir: SD_TINY_MODEL,
      token: TOKEN,
      maxSessions: 4,
      maxSessionsPerClient: 4,
    };
    // Capture every log line at the most verbose level, to prove the token never reaches the log.
    const sink = new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    });
    server = await startServer(config, pino({ level: 'trace' }, sink));
  });
  after(async () => {
    await server.close();
  });

  test('POST /whip: no token → 401 with WWW-Authenticate: Bearer; wrong → 403; right → 201', async () => {
    const peer = await makeOffer();
    try {
      const missing = await post(server.url, peer.offer);
      assert.equal(missing.status, 401);
      assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.doesNotMatch(await missing.text(), new RegExp(TOKEN));

      const basic = await post(server.url, peer.offer, { Authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` });
      assert.equal(basic.status, 401);

      const wrong = await post(server.url, peer.offer, { Authorization: 'Bearer not-the-token' });
      assert.equal(wrong.status, 403);
      assert.doesNotMatch(await wrong.text(), new RegExp(TOKEN));
      assert.equal(server.sessions.size, 0, 'refused requests create nothing');

      const auth = { Authorization: `Bearer ${TOKEN}` };
      const ok = await post(server.url, peer.offer, auth);
      assert.equal(ok.status, 201, await ok.clone().text());
      const location = ok.headers.get('location')!;

      // Every session route needs the token too.
      for (const [method, path] of [
        ['GET', location],
        ['GET', `${location}/params`],
        ['PATCH', `${location}/params`],
        ['PATCH', location],
        ['DELETE', location],
      ] as const) {
        const init = { method, headers: { 'Content-Type': 'application/json' }, body: method === 'PATCH' ? '{}' : undefined };
        assert.equal((await fetch(`${server.url}${path}`, init)).status, 401, `${method} ${path} without token`);
        const bad = await fetch(`${server.url}${path}`, { ...init, headers: { ...init.headers, Authorization: 'Bearer nope' } });
        assert.equal(bad.status, 403, `${method} ${path} with a wrong token`);
      }
      assert.equal(server.sessions.size, 1, 'an unauthenticated DELETE did not end the session');
      // Unknown sessions are not probeable without the token either.
      assert.equal((await fetch(`${server.url}/sessions/nope`, { method: 'DELETE' })).status, 401);

      const patch = await fetch(`${server.url}${location}/params`, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/json', ...auth },
        body: '{"strength":0.4}',
      });
      assert.equal(patch.status, 200);
      assert.equal((await fetch(`${server.url}${location}`, { headers: auth })).status, 200);
      assert.equal((await fetch(`${server.url}${location}`, { method: 'DELETE', headers: auth })).status, 200);
      assert.equal(server.sessions.size, 0);
    } finally {
      await peer.close();
    }
  });

  test('public routes stay open: /, /api/model, /healthz, /metrics, OPTIONS /whip', async () => {
    for (const path of ['/', '/api/model', '/healthz', '/metrics']) {
      assert.equal((await fetch(`${server.url}${path}`)).status, 200, path);
    }
    assert.equal((await fetch(`${server.url}/whip`, { method: 'OPTIONS' })).status, 204);
  });

  test('the /ws upgrade needs ?token= (or the Bearer header)', async () => {
    const attempt = (url: string, headers?: Record<string, string>): Promise<string> =>
      new Promise((resolve) => {
        const ws = new WebSocket(url, { headers });
        ws.once('open', () => {
          ws.close();
          resolve('open');
        });
        ws.once('unexpected-response', (_req, res) => {
          resolve(String(res.statusCode));
          ws.terminate();
        });
        ws.once('error', () => resolve('error'));
      });
    const base = server.url.replace(/^http/, 'ws');
    assert.equal(await attempt(`${base}/ws`), '401');
    assert.equal(await attempt(`${base}/ws?token=wrong`), '403');
    assert.equal(await attempt(`${base}/ws?token=${encodeURIComponent(TOKEN)}`), 'open');
    assert.equal(await attempt(`${base}/ws`, { Authorization: `Bearer ${TOKEN}` }), 'open');
  });

  test('the token never appears in the log', () => {
    assert.ok(logLines.length > 0, 'the logger captured something');
    const leaks = logLines.filter((l) => l.includes(TOKEN) || /authorization/i.test(l));
    assert.deepEqual(leaks, []);
  });
});

describe('without a token', () => {
  let server: RunningServer;

  before(async () => {
    server = await startTestServer({ modelDir: SD_TINY_MODEL, maxSessions: 4, maxSessionsPerClient: 2, requestTimeoutMs: 1000 });
  });
  after(async () => {
    await server.close();
  });

  test('the API is open when no token is configured', async () => {
    assert.equal((await fetch(`${server.url}/sessions/nope`)).status, 404);
  });

  test('a client address that holds --max-sessions-per-client sessions gets 503 + Retry-After', async () => {
    const peers = await Promise.all([makeOffer(), makeOffer(), makeOffer()]);
    const locations: string[] = [];
    try {
      for (const peer of peers.slice(0, 2)) {
        const res = await post(server.url, peer.offer);
        assert.equal(res.status, 201, await res.clone().text());
        locations.push(res.headers.get('location')!);
      }
      const third = await post(server.url, peers[2]!.offer);
      assert.equal(third.status, 503);
      assert.ok(Number(third.headers.get('retry-after')) > 0);
      assert.match(await third.text(), /your address.*--max-sessions-per-client/);
      assert.equal(server.sessions.size, 2, 'the total cap (4) was not what refused it');
      assert.equal(server.sessions.sessionsOf('127.0.0.1'), 2);

      // Ending one frees a slot for the same address.
      assert.equal((await fetch(`${server.url}${locations.shift()}`, { method: 'DELETE' })).status, 200);
      const again = await post(server.url, peers[2]!.offer);
      assert.equal(again.status, 201, await again.clone().text());
      locations.push(again.headers.get('location')!);
    } finally {
      for (const location of locations) await fetch(`${server.url}${location}`, { method: 'DELETE' });
      await Promise.all(peers.map((p) => p.close()));
    }
    assert.equal(server.sessions.size, 0);
    assert.equal(server.sessions.sessionsOf('127.0.0.1'), 0);
    assert.deepEqual(
      Object.values(liveResources()).filter((n) => n !== 0),
      [],
      JSON.stringify(liveResources()),
    );
  });

  test('failed offers do not use up the per-client allowance', async () => {
    for (let i = 0; i < 4; i++) assert.equal((await post(server.url, 'not sdp')).status, 400);
    assert.equal(server.sessions.sessionsOf('127.0.0.1'), 0);
  });

  test('static path traversal never serves files outside the web app', async () => {
    const paths = [
      '/../package.json',
      '/%2e%2e/package.json',
      '/..%2fpackage.json',
      '/%2e%2e%2fpackage.json',
      '/..%5cpackage.json',
      '/%2e%2e%2f%2e%2e%2fpackage.json',
      '/overlay/..%2f..%2fpackage.json',
      '/assets/../../package.json',
      '/%252e%252e/package.json',
      '/.%2e/.%2e/package.json',
    ];
    for (const path of paths) {
      // fetch() normalises dot segments, so send the raw request line.
      const { text } = await rawExchange(server.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 5000);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
      // /overlay/<name> serves overlay.html whatever the name; anything else outside the app is refused.
      if (path.startsWith('/overlay/')) assert.ok([200, 400, 403, 404].includes(status), `${path}: status ${status}`);
      else assert.ok([400, 403, 404].includes(status), `${path}: status ${status}`);
      assert.doesNotMatch(text, /"devDependencies"|"dependencies"/, path);
    }
  });

  test('an SDP body over 64 KiB is refused with 413', async () => {
    const peer = await makeOffer();
    try {
      const big = peer.offer + `a=x-pad:${'x'.repeat(65 * 1024)}\r\n`;
      const res = await post(server.url, big);
      assert.equal(res.status, 413);
      assert.equal(server.sessions.size, 0);
    } finally {
      await peer.close();
    }
  });

  // The server above runs with --request-timeout-ms 1000: cut off within 5 s leaves 4 s for a loaded machine's timer
  // check, and a server without the timeout keeps the socket for the whole 8 s the exchange waits.
  test('a slow client that sends half a request is cut off after --request-timeout-ms', async () => {
    const headersOnly = await rawExchange(server.port, 'POST /whip HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\n', 8000);
    assert.ok(
      headersOnly.closedAfterMs !== undefined && headersOnly.closedAfterMs < 5000,
      `half headers: closed after ${headersOnly.closedAfterMs} ms`,
    );
    const halfBody = await rawExchange(
      server.port,
      'POST /whip HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 1000\r\n\r\nv=0\r\n',
      8000,
    );
    assert.ok(
      halfBody.closedAfterMs !== undefined && halfBody.closedAfterMs < 5000,
      `half body: closed after ${halfBody.closedAfterMs} ms`,
    );
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });
});
