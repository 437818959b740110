// Bounded fuzzing of the HTTP surface against a real server (tiny model): mutated SDP offers,
// random parameter patches, and random bodies with random content types on every route. The
// server must answer every request with an expected status (never a 5xx, never a hang) and end
// with no session and no native resource left. Seeded: set SDS_FUZZ_SEED to replay a failure.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, test } from 'node:test';
import type { RunningServer } from '../../server/server.js';
import { liveResources } from '../../stream/resource-counters.js';
import { SD_TINY_MODEL, startTestServer } from '../support/server-harness.js';
import { makeOffer, type OfferingPeer } from '../support/werift-offer.js';
import { mulberry32 } from '../../models/scheduler.js';

const SEED = Number(process.env.SDS_FUZZ_SEED ?? 0x5d5f00d);
const PER_REQUEST_TIMEOUT_MS = 10_000;

/** The project's seeded PRNG (the same one that makes each stream's fixed noise). */
const prng = mulberry32;

const rand = prng(SEED);
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
const randomBytes = (n: number): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
};

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

let server: RunningServer;
let peers: OfferingPeer[] = [];

/** One request on a fresh connection; any method, header and body, with a hard timeout. */
function send(method: string, path: string, body?: Buffer | string, contentType?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { Connection: 'close' };
    if (contentType !== undefined) headers['Content-Type'] = contentType;
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    if (payload) headers['Content-Length'] = payload.length;
    const req = httpRequest(`${server.url}${path}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`${method} ${path} hung for ${PER_REQUEST_TIMEOUT_MS} ms (seed ${SEED})`));
    }, PER_REQUEST_TIMEOUT_MS);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(payload);
  });
}

function tally(counts: Map<number, number>, status: number): void {
  counts.set(status, (counts.get(status) ?? 0) + 1);
}

function show(counts: Map<number, number>): string {
  return [...counts.entries()]
    .sort(([a], [b]) => a - b)
    .map(([s, n]) => `${s}×${n}`)
    .join(' ');
}

before(async () => {
  server = await startTestServer({ modelDir: SD_TINY_MODEL, maxSessions: 8, maxSessionsPerClient: 8 });
  peers = await Promise.all([makeOffer(), makeOffer({ codecs: ['VP8', 'H264'], audio: true }), makeOffer({ codecs: ['H264'] })]);
  console.log(`fuzz seed ${SEED} (replay with SDS_FUZZ_SEED=${SEED})`);
});
after(async () => {
  await Promise.all(peers.map((p) => p.close()));
  await server?.close();
});

// ---- (a) mutated SDP offers --------------------------------------------------------------------

const HUGE = ['99999999999999999999999', '4294967296', '-1', '18446744073709551616', '1e308', 'NaN', '0', '65536', '-2147483649'];
const JUNK_LINES = [
  'm=video 9 UDP/TLS/RTP/SAVPF',
  'm=video 0 RTP/AVP 96',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'a=rtpmap:96 VP8/0',
  'a=rtpmap:96 VP8',
  'a=rtpmap:127 H264/90000/2/3',
  'a=fmtp:96 profile-level-id=zz;packetization-mode=9',
  'a=rtcp-fb:96',
  'a=ssrc:4294967296 cname:x',
  'a=ssrc-group:FID 1',
  'a=candidate:1 1 UDP 1 999.1.1.1 99999 typ host',
  'a=candidate:',
  'a=fingerprint:sha-256 ZZ:ZZ',
  'a=fingerprint:md5',
  'a=setup:nonsense',
  'a=ice-ufrag:',
  'a=ice-pwd:',
  'a=mid:',
  'a=group:BUNDLE 7 8 9',
  'a=extmap:99999 urn:x',
  'a=sctp-port:-5',
  'a=max-message-size:99999999999999999999',
  'c=IN IP4',
  'b=AS:-1',
  'v=1',
  'o=- x x IN IP4',
  '',
  '\u0000\u0001\u0002',
  'a=' + 'x'.repeat(4000),
];

function mutateOffer(offer: string): Buffer | string {
  let lines = offer.split('\r\n');
  const rounds = 1 + int(4);
  let bytes: Buffer | undefined;
  for (let r = 0; r < rounds; r++) {
    switch (int(8)) {
      case 0: // delete lines
        for (let k = 1 + int(3); k > 0 && lines.length > 1; k--) lines.splice(int(lines.length), 1);
        break;
      case 1: // duplicate a line (sometimes many times)
        {
          const i = int(lines.length);
          const copies = rand() < 0.2 ? 50 : 1;
          lines.splice(i, 0, ...Array<string>(copies).fill(lines[i] ?? ''));
        }
        break;
      case 2: // huge / odd numbers in place of every number on a line
        {
          const i = int(lines.length);
          lines[i] = (lines[i] ?? '').replace(/\d+/g, () => pick(HUGE));
        }
        break;
      case 3: // insert a junk line
        lines.splice(int(lines.length + 1), 0, pick(JUNK_LINES));
        break;
      case 4: // swap two lines
        {
          const i = int(lines.length);
          const j = int(lines.length);
          [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        }
        break;
      case 5: // truncate
        lines = lines.join('\r\n').slice(0, int(offer.length)).split('\r\n');
        break;
      case 6: // LF-only or mixed line endings
        bytes = undefined;
        lines = lines.join(rand() < 0.5 ? '\n' : '\r').split('\r\n');
        break;
      default: // byte flips on the encoded text
        bytes = Buffer.from(lines.join('\r\n'), 'utf8');
        for (let k = 1 + int(8); k > 0 && bytes.length > 0; k--) bytes[int(bytes.length)] = int(256);
        lines = [bytes.toString('latin1')];
        break;
    }
  }
  const text = lines.join('\r\n');
  return bytes && rounds === 1 ? bytes : Buffer.from(text, 'latin1');
}

test('(a) ~300 mutated SDP offers: 201, 400 or 415, never a 5xx or a hang', async () => {
  const counts = new Map<number, number>();
  const slow: string[] = [];
  const N = 300;
  for (let i = 0; i < N; i++) {
    const body = mutateOffer(pick(peers).offer);
    const query =
      rand() < 0.1
        ? pick([
            '?strength=2',
            '?steps=99',
            '?style=%00',
            '?seed=1e400',
            '?strength=0.5&steps=1',
            '?x=y',
            '?style=a&style=b',
            '?__proto__=1',
            '?constructor[prototype]=1',
            '?strength=&steps=',
            '?prompt=' + 'p'.repeat(3000),
            '?similarityFilter=maybe',
          ])
        : '';
    const started = Date.now();
    const res = await send('POST', `/whip${query}`, body, 'application/sdp');
    if (Date.now() - started > 1000) slow.push(`offer #${i}: ${res.status} after ${Date.now() - started} ms`);
    tally(counts, res.status);
    // A mutation can grow an offer past the 64 KiB SDP limit: that one must be 413.
    const allowed = body.length > 64 * 1024 ? [413] : [201, 400, 415];
    assert.ok(allowed.includes(res.status), `offer #${i} (seed ${SEED}): ${res.status} ${res.body}\n${body.toString()}`);
    if (res.status === 201) {
      const location = String(res.headers.location);
      const delStarted = Date.now();
      const del = await send('DELETE', location);
      if (Date.now() - delStarted > 1000) slow.push(`DELETE after offer #${i} took ${Date.now() - delStarted} ms`);
      assert.equal(del.status, 200, `DELETE ${location}`);
    }
  }
  console.log(`(a) ${N} mutated offers → ${show(counts)}${slow.length ? `; slow (>1 s): ${slow.join(', ')}` : ''}`);
  assert.equal(server.sessions.size, 0);
});

// ---- (b) random parameter patches ------------------------------------------------------------------

const PARAM_KEYS = [
  'style',
  'prompt',
  'strength',
  'steps',
  'seed',
  'consistency',
  'similarityFilter',
  '__proto__',
  'constructor',
  'toString',
  '',
];

function randomJson(depth: number, styles: readonly string[]): unknown {
  switch (int(depth > 2 ? 4 : 8)) {
    case 0:
      return null;
    case 1:
      return rand() < 0.5;
    case 2:
      return pick([0, -0, 1, -1, 0.5, 1e308, -1e308, 5e-324, 2 ** 53, 2 ** 53 + 2, 4, 3.9999, rand() * 10 - 5, int(1e9)]);
    case 3:
      return pick([...styles, '', 'x'.repeat(int(5000)), '\u0000', '\ud83d\ude00', 'NaN', '1', randomBytes(int(20)).toString('latin1')]);
    case 4:
    case 5: {
      // an object with parameter names (and odd ones) as keys: the interesting case
      const o: Record<string, unknown> = {};
      for (let k = int(5); k >= 0; k--) o[pick(PARAM_KEYS)] = randomJson(depth + 1, styles);
      return o;
    }
    case 6:
      return Array.from({ length: int(4) }, () => randomJson(depth + 1, styles));
    default: {
      const o: Record<string, unknown> = {};
      o[pick(PARAM_KEYS)] = randomJson(depth + 1, styles);
      return o;
    }
  }
}

/** A patch that is valid or nearly so, to exercise the accepting path as well as the refusals. */
function plausiblePatch(styles: readonly string[]): Record<string, unknown> {
  const values: Record<string, () => unknown> = {
    style: () => (rand() < 0.8 ? pick(styles) : 'no-such-style'),
    prompt: () => (rand() < 0.8 ? 'a watercolor city at dusk' : 'x'.repeat(int(3000))),
    strength: () => (rand() < 0.8 ? rand() : pick([-0.1, 1.1, 1e9])),
    steps: () => (rand() < 0.8 ? pick(server.restyler.info.steps) : pick([0, 5, 2.5])),
    seed: () => (rand() < 0.8 ? int(2 ** 31) : pick([-1, 2 ** 53 + 2, 0.5])),
    consistency: () => (rand() < 0.8 ? rand() : pick([-1, 2])),
    similarityFilter: () => (rand() < 0.8 ? rand() < 0.5 : 'yes'),
  };
  const patch: Record<string, unknown> = {};
  for (let k = 1 + int(3); k > 0; k--) {
    const key = pick(Object.keys(values));
    patch[key] = values[key]!();
  }
  return patch;
}

let liveLocation = '';

test('(b) ~300 random JSON values and garbage bodies to PATCH /sessions/:id/params: 200 or 400 only', async () => {
  const created = await send('POST', '/whip', peers[0]!.offer, 'application/sdp');
  assert.equal(created.status, 201, created.body);
  liveLocation = String(created.headers.location);
  const styles = server.restyler.info.styles;
  const counts = new Map<number, number>();
  const N = 300;
  for (let i = 0; i < N; i++) {
    let body: Buffer | string;
    const kind = int(10);
    if (kind < 3) body = JSON.stringify(plausiblePatch(styles));
    else if (kind < 7) body = JSON.stringify(randomJson(0, styles));
    else if (kind === 7) body = randomBytes(int(200));
    else if (kind === 8)
      body = JSON.stringify(randomJson(0, styles)).slice(0, -1 - int(3)); // truncated JSON
    else
      body = pick([
        '',
        ' ',
        '{"__proto__":{"strength":1}}',
        '{"constructor":{"prototype":{"x":1}}}',
        '[]',
        '"',
        '1'.repeat(400),
        '{"a":'.repeat(200),
      ]);
    const res = await send('PATCH', `${liveLocation}/params`, body, 'application/json');
    tally(counts, res.status);
    assert.ok([200, 400].includes(res.status), `patch #${i} (seed ${SEED}): ${res.status} ${res.body}\n${body.toString()}`);
  }
  console.log(`(b) ${N} parameter patches → ${show(counts)}`);
  // The session still answers with well-formed parameters.
  const params = await send('GET', `${liveLocation}/params`);
  assert.equal(params.status, 200);
  const parsed = JSON.parse(params.body) as { strength: number; steps: number };
  assert.ok(parsed.strength >= 0 && parsed.strength <= 1);
  assert.ok(server.restyler.info.steps.includes(parsed.steps));
});

// ---- (c) random bytes, random content types, every route ------------------------------------------

const CONTENT_TYPES = [
  undefined,
  'application/sdp',
  'application/json',
  'application/trickle-ice-sdpfrag',
  'text/plain',
  'application/octet-stream',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded',
  'application/json; charset=utf-16',
  'application/sdp;;;charset=',
  'APPLICATION/SDP',
  '*/*',
  '',
  'garbage',
];

test('(c) random bodies with random content types on every route: no 5xx', async () => {
  const routes: [string, string][] = [
    ['POST', '/whip'],
    ['OPTIONS', '/whip'],
    ['PUT', '/whip'],
    ['GET', '/whip'],
    ['PATCH', liveLocation],
    ['GET', liveLocation],
    ['POST', liveLocation],
    ['GET', `${liveLocation}/params`],
    ['PATCH', `${liveLocation}/params`],
    ['PUT', `${liveLocation}/params`],
    ['PATCH', '/sessions/nope'],
    ['DELETE', '/sessions/nope'],
    ['GET', '/sessions/nope'],
    ['PATCH', '/sessions/nope/params'],
    ['GET', '/sessions/%00'],
    ['GET', '/api/model'],
    ['POST', '/api/model'],
    ['GET', '/healthz'],
    ['GET', '/metrics'],
    ['GET', '/'],
    ['POST', '/'],
    ['GET', '/overlay/x'],
    ['GET', '/index.html'],
    ['GET', '/no-such-file.js'],
    ['DELETE', '/'],
  ];
  const counts = new Map<number, number>();
  const N = 300;
  for (let i = 0; i < N; i++) {
    const [method, path] = routes[i % routes.length]!;
    const withBody = method !== 'GET' && method !== 'OPTIONS' ? true : rand() < 0.3;
    const body = withBody ? randomBytes(int(rand() < 0.1 ? 70_000 : 600)) : undefined;
    const res = await send(method, path, body, pick(CONTENT_TYPES));
    tally(counts, res.status);
    assert.ok(res.status >= 200 && res.status < 500, `${method} ${path} #${i} (seed ${SEED}): ${res.status} ${res.body}`);
    if (method === 'POST' && path === '/whip' && res.status === 201) await send('DELETE', String(res.headers.location));
  }
  console.log(`(c) ${N} random requests over ${routes.length} routes → ${show(counts)}`);
});

// ---- (d) nothing left behind -------------------------------------------------------------------------

test('(d) afterwards the server is healthy and holds no session or native resource', async () => {
  assert.equal((await send('GET', '/healthz')).status, 200);
  assert.equal((await send('DELETE', liveLocation)).status, 200);
  const deadline = Date.now() + 5000;
  while ((server.sessions.size > 0 || Object.values(liveResources()).some((n) => n !== 0)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(server.sessions.size, 0);
  assert.deepEqual(
    Object.values(liveResources()).filter((n) => n !== 0),
    [],
    JSON.stringify(liveResources()),
  );
  assert.equal((await send('GET', '/healthz')).status, 200);
});
