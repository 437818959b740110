// How front doors place publishers, against a real redis-server: a burst of simultaneous WHIP POSTs split
// between two front doors lands evenly on two workers (one atomic reservation per POST), the per-client limit
// counts the whole cluster, a draining worker gets nobody, and a front door that loses Redis keeps routing
// viewers from its last registry read while refusing publishers with 503 + Retry-After until Redis is back.
// The workers here are their registry records, written by the product's WorkerRegistration from a snapshot
// the test controls; the redirects are read, not followed (cluster.test.ts follows them to real workers).
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { RedisServer, startLoopbackFrontDoor } from '../../bench/loopback-cluster.js';
import type { RunningFrontDoor } from '../../server/cluster/front-door.js';
import { connectRedis, KEYS, WorkerRegistration, type RedisClient, type WorkerRecord } from '../../server/cluster/registry.js';
import { hasRedisServer, NO_REDIS } from '../support/redis-server.js';
import { requireOrSkip } from '../support/test-dependency.js';
import { until } from '../support/until.js';

const skip = requireOrSkip('Redis', hasRedisServer ? false : NO_REDIS);
const HEARTBEAT_MS = 200;
const PER_CLIENT = 3;
const silent = pino({ level: 'silent' });

let redis: RedisServer;
const fronts: RunningFrontDoor[] = [];

/** A worker as the registry sees it: the test sets what its snapshot reports. */
class FakeWorker {
  state: Omit<WorkerRecord, 'updatedAtMs'>;
  registration!: WorkerRegistration;
  private client!: RedisClient;

  constructor(id: string, port: number, maxSessions = 4) {
    this.state = {
      id,
      url: `http://127.0.0.1:${port}`,
      sessions: 0,
      maxSessions,
      viewers: 0,
      streams: [],
      headroom: 0.8,
      model: 'm',
      clients: {},
      draining: false,
    };
  }

  async start(): Promise<this> {
    this.client = await connectRedis(redis.url, silent);
    this.registration = new WorkerRegistration(this.client, HEARTBEAT_MS, () => this.state, silent);
    await this.registration.start();
    return this;
  }

  async stop(): Promise<void> {
    await this.registration.stop().catch(() => undefined);
    await this.client.quit().catch(() => this.client.destroy());
  }
}

interface Answer {
  status: number;
  location?: string;
  retryAfter?: string;
  body: string;
}

/** A WHIP POST (not followed) from client address `from` (any 127.x.y.z is this machine's loopback). */
function post(front: RunningFrontDoor, path: string, from = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${front.url}${path}`,
      { method: 'POST', localAddress: from, headers: { 'Content-Type': 'application/sdp' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            location: res.headers.location,
            retryAfter: res.headers['retry-after'] as string | undefined,
            body,
          }),
        );
      },
    );
    req.once('error', reject);
    req.end('v=0\r\n');
  });
}

/** Where an answer sent its publisher: the worker's origin, or the status. */
const placement = (a: Answer): string => (a.status === 307 ? new URL(a.location!).origin : String(a.status));

function tally(placements: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of placements) counts[p] = (counts[p] ?? 0) + 1;
  return counts;
}

before(async () => {
  if (skip) return;
  redis = await RedisServer.start();
  for (let i = 0; i < 2; i++) {
    fronts.push(
      await startLoopbackFrontDoor(redis.url, HEARTBEAT_MS, [
        '--max-sessions-per-client',
        String(PER_CLIENT),
        '--registry-grace-ms',
        '20000',
      ]),
    );
  }
});

after(async () => {
  for (const f of fronts) await f.close();
  await redis?.stop();
});

test(
  'a burst of 8 publishers split between two front doors lands 4 + 4 on two idle workers, every time',
  { skip, timeout: 60_000 },
  async () => {
    const spreads: string[] = [];
    for (let run = 0; run < 10; run++) {
      const workers = [await new FakeWorker(`a${run}`, 10_001, 4).start(), await new FakeWorker(`b${run}`, 10_002, 4).start()];
      const responses = await Promise.all(
        Array.from({ length: 8 }, (_, i) => post(fronts[i % 2]!, '/whip', `127.0.0.${10 + i}`).then(placement)),
      );
      const counts = tally(responses);
      spreads.push(`${counts['http://127.0.0.1:10001'] ?? 0}+${counts['http://127.0.0.1:10002'] ?? 0}`);
      for (const w of workers) await w.stop();
    }
    process.stdout.write(`# burst of 8 over 2 workers via 2 front doors, 10 runs: ${spreads.join(' ')}\n`);
    assert.deepEqual(spreads, Array(10).fill('4+4'));
  },
);

test(
  'the per-client limit counts the whole cluster: reservations on every worker, then the sessions the workers report',
  { skip, timeout: 30_000 },
  async () => {
    const a = await new FakeWorker('pc-a', 10_011).start();
    const b = await new FakeWorker('pc-b', 10_012).start();
    try {
      // Five at once from one address, through both front doors: three get slots (spread over both workers), two a 503.
      const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => post(fronts[i % 2]!, '/whip', '127.0.0.77')));
      const placed = answers.filter((r) => r.status === 307);
      assert.equal(placed.length, PER_CLIENT, answers.map(placement).join(' '));
      assert.equal(new Set(placed.map(placement)).size, 2, 'the three are spread over both workers');
      for (const refused of answers.filter((r) => r.status !== 307)) {
        assert.equal(refused.status, 503);
        assert.match(refused.body, /too many sessions from your address.*in this cluster/);
        assert.ok(Number(refused.retryAfter) > 0);
      }
      // Another address is not affected.
      assert.equal((await post(fronts[0]!, '/whip', '127.0.0.78')).status, 307);
      // The publishers arrive: each worker takes over its reservations in its own count (one heartbeat, one
      // transaction), and the address still holds three.
      for (const [worker, origin] of [
        [a, 'http://127.0.0.1:10011'],
        [b, 'http://127.0.0.1:10012'],
      ] as const) {
        const mine = placed.filter((r) => placement(r) === origin);
        worker.state = { ...worker.state, sessions: mine.length, clients: { '127.0.0.77': mine.length } };
        for (const r of mine) worker.registration.slotArrived(new URL(r.location!).searchParams.get('sds_slot')!);
        await worker.registration.beatNow();
      }
      assert.equal((await post(fronts[1]!, '/whip', '127.0.0.77')).status, 503, 'still three, now counted by the workers');
      // Its sessions end: the address may publish again.
      for (const worker of [a, b]) {
        worker.state = { ...worker.state, sessions: 0, clients: {} };
        await worker.registration.beatNow();
      }
      assert.equal((await post(fronts[1]!, '/whip', '127.0.0.77')).status, 307);
    } finally {
      await a.stop();
      await b.stop();
    }
  },
);

test("a slot counts once: reserved until its publisher arrives, then in the worker's own record", { skip, timeout: 30_000 }, async () => {
  const a = await new FakeWorker('once-a', 10_021, 2).start();
  const b = await new FakeWorker('once-b', 10_022, 2).start();
  try {
    const first = await post(fronts[0]!, '/whip', '127.0.0.31');
    const second = await post(fronts[1]!, '/whip', '127.0.0.32');
    assert.notEqual(placement(first), placement(second), 'the second goes to the worker with more free slots');
    // The first publisher arrives at its worker, which reports it: that worker still has exactly one slot free.
    const worker = placement(first) === a.state.url ? a : b;
    worker.state = { ...worker.state, sessions: 1, clients: { '127.0.0.31': 1 } };
    worker.registration.slotArrived(new URL(first.location!).searchParams.get('sds_slot')!);
    await worker.registration.beatNow();
    const third = await post(fronts[0]!, '/whip', '127.0.0.33');
    const fourth = await post(fronts[1]!, '/whip', '127.0.0.34');
    assert.deepEqual([third, fourth].map(placement).sort(), [a.state.url, b.state.url].sort(), 'one more on each');
    const full = await post(fronts[0]!, '/whip', '127.0.0.35');
    assert.equal(full.status, 503, 'four slots, four publishers');
    assert.match(full.body, /no worker has room/);
    assert.ok(Number(full.retryAfter) > 0);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('a draining worker gets no new publisher, and keeps its streams reachable for viewers', { skip, timeout: 30_000 }, async () => {
  const a = await new FakeWorker('drain-a', 10_031).start();
  const b = await new FakeWorker('drain-b', 10_032).start();
  try {
    a.state = { ...a.state, streams: ['on-a'], sessions: 1, draining: true };
    await a.registration.beatNow();
    const burst = await Promise.all(Array.from({ length: 4 }, (_, i) => post(fronts[i % 2]!, '/whip', `127.0.1.${i + 1}`)));
    assert.deepEqual(burst.map(placement), Array(4).fill(b.state.url));
    assert.equal((await post(fronts[0]!, '/whip', '127.0.1.9')).status, 503, 'the only open worker is full');
    for (const front of fronts) assert.equal(placement(await post(front, '/whep/on-a')), a.state.url);
    assert.equal(
      placement(await post(fronts[1]!, '/whip/on-a', '127.0.1.10')),
      a.state.url,
      'a live name stays with its worker, which answers 409',
    );
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('two front doors over one Redis give the same answers', { skip, timeout: 30_000 }, async () => {
  const a = await new FakeWorker('same-a', 10_041).start();
  const b = await new FakeWorker('same-b', 10_042).start();
  try {
    a.state = { ...a.state, streams: ['cam-1'] };
    b.state = { ...b.state, streams: ['cam-2'], draining: true };
    await a.registration.beatNow();
    await b.registration.beatNow();
    const ask = async (front: RunningFrontDoor) => ({
      cam1: placement(await post(front, '/whep/cam-1')),
      cam2: placement(await post(front, '/whep/cam-2')),
      none: placement(await post(front, '/whep/nobody')),
      named: placement(await post(front, '/whip/cam-2', '127.0.2.1')),
      cluster: ((await (await fetch(`${front.url}/api/cluster`)).json()) as { workers: WorkerRecord[] }).workers
        .map((w) => [w.id, w.draining])
        .sort(),
      health: await (await fetch(`${front.url}/healthz`)).json(),
    });
    const [first, second] = [await ask(fronts[0]!), await ask(fronts[1]!)];
    assert.deepEqual(first, second);
    assert.deepEqual([first.cam1, first.cam2, first.none, first.named], [a.state.url, b.state.url, '404', b.state.url]);
  } finally {
    await a.stop();
    await b.stop();
  }
});

// Last: it stops Redis. While Redis is away the front door answers viewers from the registry it last read,
// and publishers with 503 + Retry-After (a slot must be reserved in the shared registry); once Redis is back,
// the worker writes its record again at once and publishers are admitted without restarting anything.
test(
  'Redis lost and back: viewers are routed from the last known registry, publishers wait, then all recovers',
  { skip, timeout: 60_000 },
  async () => {
    const a = await new FakeWorker('outage-a', 10_051).start();
    try {
      a.state = { ...a.state, streams: ['live-1'] };
      await a.registration.beatNow();
      await until(
        'both front doors have read the registry',
        async () => (await Promise.all(fronts.map((f) => post(f, '/whep/live-1')))).every((r) => r.status === 307) || undefined,
        5000,
      );
      await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_MS)); // a background refresh of the last known registry
      await redis.stop();
      for (const front of fronts) {
        assert.equal(placement(await post(front, '/whep/live-1')), a.state.url, 'a live stream is still found');
        const stream = await fetch(`${front.url}/streams/live-1`, { redirect: 'manual' });
        assert.equal(stream.status, 307);
        assert.equal((await post(front, '/whep/unknown')).status, 404);
        const publisher = await post(front, '/whip', '127.0.3.1');
        assert.equal(publisher.status, 503);
        assert.match(publisher.body, /registry is unreachable/);
        assert.ok(Number(publisher.retryAfter) > 0);
      }
      // The worker keeps trying (its heartbeat fails quietly) and nothing crashes while Redis is down.
      await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS));
      await redis.restart();
      const backAt = Date.now();
      await until(
        'a publisher is admitted again',
        async () => (await post(fronts[0]!, '/whip', '127.0.3.2')).status === 307 || undefined,
        15_000,
        20,
      );
      const admittedAfterMs = Date.now() - backAt;
      process.stdout.write(`# Redis back (empty) → new publisher admitted after ${admittedAfterMs} ms (heartbeat ${HEARTBEAT_MS} ms)\n`);
      assert.equal(placement(await post(fronts[1]!, '/whep/live-1')), a.state.url, 'the worker re-registered its stream');
    } finally {
      await a.stop();
    }
  },
);
