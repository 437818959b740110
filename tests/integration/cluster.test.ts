// Scale-out on one machine: a real Redis (Debian's redis-server), two worker processes
// (`sds serve --role worker`) and a front door (`--role front`), all on loopback. Four named publishers
// arriving at once are spread 2 + 2 by 307 redirects; a WHEP viewer of each stream is redirected to the
// worker that holds it and decodes frames. Redis is then stopped and started again under the live streams;
// both workers are restarted one at a time by draining (SIGTERM, then POST /admin/drain); finally a worker
// killed with SIGKILL leaves the registry within its TTL. The cluster runs with a token throughout, which
// the redirected requests pass on the front door's signed tickets. Skipped (with a message) where
// redis-server is missing; .ci/run installs it.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { createLoopbackClient, loadTestPhoto, makePanClip, type LoopbackClient } from '../../bench/loopback-client.js';
import type { RgbImage } from '../../frame/video-frame.js';
import {
  clusterWorkers,
  RedisServer,
  SMALL_WORKER_ARGS,
  spawnClusterWorker,
  startLoopbackFrontDoor,
} from '../../bench/loopback-cluster.js';
import type { RunningFrontDoor } from '../../server/cluster/front-door.js';
import type { WorkerRecord } from '../../server/cluster/registry.js';
import { startWhepViewer, type WhepViewer } from '../../bench/whep-viewer.js';
import { hasRedisServer, NO_REDIS } from '../support/redis-server.js';
import { until } from '../support/until.js';
import { requireOrSkip } from '../support/test-dependency.js';

const HEARTBEAT_MS = 300;
// The whole cluster is token-protected: redirected requests must get through on the front door's signed ticket.
const TOKEN = 'cluster-test-token';
const AUTH = { Authorization: `Bearer ${TOKEN}` };
const skip = requireOrSkip('Redis', hasRedisServer ? false : NO_REDIS);

let redis: RedisServer | undefined;
const workers: WorkerProcess[] = [];
const ADMIN_TOKEN = 'cluster-test-admin-token';
const SDP = { 'Content-Type': 'application/sdp' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A WHIP or WHEP POST through the front door, not followed: where would it go? */
const ask = (path: string) =>
  fetch(`${front!.url}${path}`, { method: 'POST', headers: { ...SDP, ...AUTH }, body: 'v=0\r\n', redirect: 'manual' });
let front: RunningFrontDoor | undefined;
const publishers: LoopbackClient[] = [];
/** The latest publisher of each stream name. */
const byName = new Map<string, LoopbackClient>();
const viewers: WhepViewer[] = [];
let clip: RgbImage[];

const cluster = (): Promise<WorkerRecord[]> => clusterWorkers(front!.url, AUTH);

/** A worker process and how it ended (its exit code; null while it runs or when killed by a signal). */
interface WorkerProcess {
  child: ChildProcess;
  exited: Promise<{ code: number | null; atMs: number }>;
}

/** A worker's process, from its registry id (which ends in its process id). */
const processOf = (record: WorkerRecord): WorkerProcess => workers.find((w) => w.child.pid === Number(record.id.split('-').pop()))!;

function startWorker(redisUrl: string): WorkerProcess {
  const child = spawnClusterWorker(redisUrl, HEARTBEAT_MS, [
    '--max-sessions',
    '8',
    '--max-sessions-per-client',
    '16',
    ...SMALL_WORKER_ARGS,
    '--token',
    TOKEN,
    '--admin-token',
    ADMIN_TOKEN,
    '--drain-timeout-ms',
    '60000',
  ]);
  const worker = {
    child,
    exited: new Promise<{ code: number | null; atMs: number }>((resolve) =>
      child.once('exit', (code) => resolve({ code, atMs: Date.now() })),
    ),
  };
  workers.push(worker);
  return worker;
}

/** Publish `name` through the front door (or at `whipUrl`); looped and send-only unless told otherwise. */
async function publish(
  name: string,
  options: { whipUrl?: string; loop?: boolean; onOutputFrame?: (rtpTimestamp: number) => void } = {},
): Promise<LoopbackClient> {
  const client = await createLoopbackClient({
    whipUrl: options.whipUrl ?? `${front!.url}/whip/${name}`,
    codec: 'VP8',
    fps: 10,
    frames: clip,
    width: 320,
    height: 240,
    loop: options.loop ?? true,
    direction: options.onOutputFrame ? 'sendrecv' : 'sendonly',
    token: TOKEN,
    // Four peers negotiating at once on a loaded 2-core machine can take longer than the default 10 s.
    connectTimeoutMs: 30_000,
    onOutputFrame: options.onOutputFrame ?? (() => {}),
  });
  publishers.push(client);
  byName.set(name, client);
  return client;
}

before(async () => {
  if (skip) return;
  clip = await makePanClip(await loadTestPhoto(), 320, 240, 20);
  redis = await RedisServer.start();
  const redisUrl = redis.url;
  // The front door waits for Redis by retrying its first connection.
  front = await until(
    'the front door connects to Redis',
    () => startLoopbackFrontDoor(redisUrl, HEARTBEAT_MS, ['--max-sessions-per-client', '16', '--token', TOKEN]).catch(() => undefined),
    10_000,
  );
  startWorker(redisUrl);
  startWorker(redisUrl);
  await until('two workers registered', async () => ((await cluster()).length === 2 ? true : undefined), 30_000);
});

after(async () => {
  for (const v of viewers) await v.close().catch(() => undefined);
  for (const p of publishers) await p.close().catch(() => undefined);
  await front?.close();
  for (const w of workers) w.child.kill('SIGKILL');
  await redis?.stop();
});

test(
  'publishers arriving at once are spread over both workers, and each viewer is redirected to the worker that holds its stream',
  { skip, timeout: 90_000 },
  async () => {
    const names = ['cam-a', 'cam-b', 'cam-c', 'cam-d'];
    const burst = await Promise.all(names.map((name) => publish(name)));
    const spread = await until(
      'the workers report all four streams',
      async () => {
        const ws = await cluster();
        return ws.reduce((n, w) => n + w.streams.length, 0) === 4 ? ws : undefined;
      },
      10_000,
    );
    assert.deepEqual(
      spread.map((w) => w.streams.length).sort(),
      [2, 2],
      `streams per worker: ${spread.map((w) => `${w.url} ${w.streams.join(',')}`).join('; ')}`,
    );
    // Each publisher's session resource lives on the worker that reports its stream.
    for (const [i, name] of names.entries()) {
      const holder = spread.find((w) => w.streams.includes(name))!;
      assert.equal(new URL(burst[i]!.location).origin, holder.url, `${name}'s session is on its worker`);
    }
    for (const name of names) {
      const viewer = await startWhepViewer({ whepUrl: `${front!.url}/whep/${name}`, token: TOKEN });
      viewers.push(viewer);
      const holder = spread.find((w) => w.streams.includes(name))!;
      assert.equal(new URL(viewer.location).origin, holder.url, `the viewer of ${name} was sent to its worker`);
    }
    await until(
      'every viewer decoded restyled frames',
      () => (viewers.every((v) => v.stats().framesDecoded >= 3) ? true : undefined),
      30_000,
    );
    // The web app is served by the front door, and its model description comes from a worker.
    const page = await fetch(`${front!.url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    const model = await fetch(`${front!.url}/api/model`);
    assert.equal(model.status, 200);
    assert.ok(
      spread.some((w) => model.url.startsWith(w.url)),
      'answered by a worker',
    );
    assert.equal(((await model.json()) as { name: string }).name, spread[0]!.model);
    // A stream nobody publishes is not found, at the front door.
    assert.equal(
      (
        await fetch(`${front!.url}/whep/nobody`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/sdp' },
          body: 'v=0\r\n',
          redirect: 'manual',
        })
      ).status,
      401,
      'the front door wants the token',
    );
    assert.equal(
      (
        await fetch(`${front!.url}/whep/nobody`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/sdp', ...AUTH },
          body: 'v=0\r\n',
          redirect: 'manual',
        })
      ).status,
      404,
    );
    // A redirect carries a one-time signed ticket, because clients drop Authorization across origins; the
    // worker takes it once and refuses a replay, and refuses a request with neither token nor ticket.
    const redirect = await fetch(`${front!.url}/whip/cam-x`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', ...AUTH },
      body: 'v=0\r\n',
      redirect: 'manual',
    });
    assert.equal(redirect.status, 307);
    const target = new URL(redirect.headers.get('location')!);
    assert.ok(target.searchParams.get('sds_ticket'));
    const sdp = { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: 'v=0\r\n' };
    assert.equal((await fetch(target, sdp)).status, 400, 'the ticket admits the request (then the SDP is refused)');
    assert.equal((await fetch(target, sdp)).status, 401, 'a replayed ticket is refused');
    target.search = '';
    assert.equal((await fetch(target, sdp)).status, 401);
  },
);

test(
  'Redis stopped and started again: live streams carry on, viewers are still routed, publishers wait, then all recovers',
  { skip, timeout: 90_000 },
  async () => {
    const spread = await cluster();
    const holderOfA = spread.find((w) => w.streams.includes('cam-a'))!;
    const decodedBefore = viewers.map((v) => v.stats().framesDecoded);
    await redis!.stop();
    // Viewers are routed from the front door's last registry read; publishers wait (no slot can be reserved).
    const whep = await ask('/whep/cam-a');
    assert.equal(whep.status, 307);
    assert.equal(new URL(whep.headers.get('location')!).origin, holderOfA.url);
    assert.equal((await fetch(`${front!.url}/streams/cam-a`, { headers: AUTH, redirect: 'manual' })).status, 307);
    const refused = await ask('/whip/cam-e');
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.headers.get('retry-after')) > 0);
    // Longer than the registry TTL: had Redis been up, the records would have expired. The streams do not care.
    await sleep(6 * HEARTBEAT_MS);
    await until(
      'every viewer decoded more frames while Redis was away',
      () => viewers.every((v, i) => v.stats().framesDecoded > decodedBefore[i]! + 5) || undefined,
      15_000,
    );
    for (const p of publishers) assert.equal((await fetch(p.location, { headers: AUTH })).status, 200, 'the session lives on');
    await redis!.restart();
    const backAt = Date.now();
    const admitted = await until(
      'a new publisher is admitted',
      async () => {
        const res = await ask('/whip/cam-e');
        if (res.status === 307) return res.headers.get('location')!;
        assert.equal(res.status, 503);
        return undefined;
      },
      20_000,
      25,
    );
    const admittedAfterMs = Date.now() - backAt;
    await publish('cam-e', { whipUrl: admitted });
    const sessionAfterMs = Date.now() - backAt;
    process.stdout.write(
      `# Redis back (empty) → publisher redirected after ${admittedAfterMs} ms, its session live after ${sessionAfterMs} ms (heartbeat ${HEARTBEAT_MS} ms)\n`,
    );
    const back = await until(
      'both workers re-registered with all their streams',
      async () => {
        const ws = await cluster();
        return ws.length === 2 && ws.reduce((n, w) => n + w.streams.length, 0) === 5 ? ws : undefined;
      },
      10_000,
    );
    assert.equal(back.find((w) => w.streams.includes('cam-a'))!.url, holderOfA.url);
  },
);

test(
  'a rolling restart drains each worker in turn: new publishers never reach it, a session that ends during the drain loses no frame, it exits 0',
  { skip, timeout: 240_000 },
  async () => {
    const originals = await cluster();
    assert.equal(originals.length, 2);
    const figures: string[] = [];
    for (const [turn, old] of originals.entries()) {
      const oldProcess = processOf(old);
      // The replacement first, so that capacity never drops.
      const replacement = startWorker(redis!.url);
      await until(
        'the replacement registered',
        async () => ((await cluster()).some((w) => w.id.endsWith(`-${replacement.child.pid}`)) ? true : undefined),
        60_000,
      );
      // A short clip published straight at the old worker; it ends by itself during the drain.
      const returned = new Set<number>();
      const finite = await publish(`drain-${turn}`, {
        whipUrl: `${old.url}/whip/drain-${turn}`,
        loop: false,
        onOutputFrame: (ts) => returned.add(ts),
      });
      await until('the clip is restyled', () => returned.size > 0 || undefined, 20_000);
      if (turn === 0) {
        oldProcess.child.kill('SIGTERM');
      } else {
        const drain = (authorization?: string) =>
          fetch(`${old.url}/admin/drain`, { method: 'POST', headers: authorization ? { Authorization: authorization } : {} });
        assert.equal((await drain()).status, 401);
        assert.equal((await drain(`Bearer ${TOKEN}`)).status, 403, 'the API token is not the admin token');
        const accepted = await drain(`Bearer ${ADMIN_TOKEN}`);
        assert.equal(accepted.status, 202);
        assert.equal(((await accepted.json()) as { draining: boolean }).draining, true);
      }
      const current = await until(
        'the registry says it drains',
        async () => (await cluster()).find((w) => w.id === old.id && w.draining),
        5000,
      );
      // New publishers go elsewhere, through the front door; one that comes straight to it is told to retry.
      const burst = await Promise.all([ask('/whip'), ask('/whip')]);
      for (const res of burst) {
        assert.equal(res.status, 307);
        assert.notEqual(new URL(res.headers.get('location')!).origin, old.url, 'a draining worker gets no new publisher');
      }
      const direct = await fetch(`${old.url}/whip`, { method: 'POST', headers: { ...SDP, ...AUTH }, body: 'v=0\r\n' });
      assert.equal(direct.status, 503);
      assert.match(await direct.text(), /draining/);
      // Its streams are still watched through the front door while it drains.
      const watched = current.streams.find((n) => !n.startsWith('drain-'));
      if (watched) assert.equal(new URL((await ask(`/whep/${watched}`)).headers.get('location')!).origin, old.url);
      // The clip ends; every frame the worker restyled reaches the publisher.
      await finite.finished;
      // Settled: the worker's output count stopped moving and the publisher holds at least that many frames.
      let lastOut = -1;
      await until(
        'the last restyled frames arrived',
        async () => {
          const out = ((await (await fetch(finite.location, { headers: AUTH })).json()) as { framesOut: number }).framesOut;
          const settled = out === lastOut && returned.size >= out;
          lastOut = out;
          return settled || undefined;
        },
        15_000,
        250,
      ).catch(() => undefined);
      const final = (await (await fetch(finite.location, { headers: AUTH })).json()) as {
        framesIn: number;
        framesOut: number;
        droppedFrames: number;
      };
      const stats = finite.stats();
      await finite.close();
      const lost = final.framesOut - returned.size;
      figures.push(
        `worker ${turn + 1} (${turn === 0 ? 'SIGTERM' : 'POST /admin/drain'}): sent ${stats.framesSent}, restyled ${final.framesOut} (dropped by the scheduler ${final.droppedFrames}), received ${returned.size}, lost ${lost}`,
      );
      assert.equal(lost, 0, 'every restyled frame of a session that ended during the drain reached its publisher');
      // The old worker's other publishers end by themselves and come back through the front door, elsewhere
      // (once the old worker's heartbeat has released the name).
      const others = current.streams.filter((n) => !n.startsWith('drain-'));
      for (const name of others) await byName.get(name)!.close();
      const lastEndedAt = Date.now();
      for (const name of others) {
        const again = await until(`${name} is published again`, () => publish(name).catch(() => undefined), 10_000, 100);
        assert.notEqual(new URL(again.location).origin, old.url);
      }
      const exit = await oldProcess.exited;
      assert.equal(exit.code, 0, 'the drained worker exits 0');
      figures.push(`worker ${turn + 1} exited ${exit.atMs - lastEndedAt} ms after its last session ended`);
    }
    process.stdout.write(`# rolling restart: ${figures.join('; ')}\n`);
    assert.equal((await cluster()).length, 2);
  },
);

test('a killed worker leaves the registry within its TTL and new publishers go to the survivor', { skip, timeout: 60_000 }, async () => {
  const before = await cluster();
  assert.equal(before.length, 2);
  const victim = before[0]!;
  const survivor = before[1]!;
  // A worker's registry id ends in its process id.
  const victimProcess = processOf(victim);
  assert.ok(victimProcess, `the process of ${victim.id}`);
  const killedAt = Date.now();
  victimProcess.child.kill('SIGKILL');
  await until(
    'the killed worker left the registry',
    async () => ((await cluster()).every((w) => w.id !== victim.id) ? true : undefined),
    10_000,
  );
  const goneAfterMs = Date.now() - killedAt;
  // The TTL (three missed heartbeats, 900 ms) plus 2 s for a loaded machine to notice: each poll is an HTTP round
  // trip to the front door and Redis reads. A record without a TTL never leaves (the wait above times out at 10 s).
  assert.ok(goneAfterMs <= 3 * HEARTBEAT_MS + 2000, `left after ${goneAfterMs} ms`);
  process.stdout.write(
    `# killed worker left the registry after ${goneAfterMs} ms (heartbeat ${HEARTBEAT_MS} ms, TTL ${3 * HEARTBEAT_MS} ms)\n`,
  );
  const late = await publish('cam-late');
  assert.equal(new URL(late.location).origin, survivor.url, 'the new publisher went to the surviving worker');
  // The killed worker's streams are gone with it: a viewer gets 404, not a redirect to a dead worker.
  const lost = victim.streams[0]!;
  assert.equal(
    (
      await fetch(`${front!.url}/whep/${lost}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', ...AUTH },
        body: 'v=0\r\n',
        redirect: 'manual',
      })
    ).status,
    404,
  );
});

test('with no worker able to take a stream, the front door answers 503 with Retry-After', { skip, timeout: 30_000 }, async () => {
  for (const w of workers) w.child.kill('SIGKILL');
  await until('no worker is registered', async () => ((await cluster()).length === 0 ? true : undefined), 10_000);
  const res = await fetch(`${front!.url}/whip/cam-z`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', ...AUTH },
    body: 'v=0\r\n',
    redirect: 'manual',
  });
  assert.equal(res.status, 503);
  assert.ok(Number(res.headers.get('retry-after')) > 0);
  assert.equal(((await (await fetch(`${front!.url}/healthz`)).json()) as { workers: number }).workers, 0);
});
