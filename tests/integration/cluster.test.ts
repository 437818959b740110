// Scale-out on one machine: a real Redis (Debian's redis-server), two worker processes
// (`sds serve --role worker`) and a front door (`--role front`), all on loopback. Four named publishers
// are spread over both workers by 307 redirects; a WHEP viewer of each stream is redirected to the worker
// that holds it and decodes frames; a worker killed with SIGKILL leaves the registry within its TTL and
// the next publisher goes to the survivor. The cluster runs with a token throughout, which the redirected
// requests pass on the front door's signed tickets. Skipped (with a message) where redis-server is missing;
// .ci/run installs it.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { createLoopbackClient, loadTestPhoto, makePanClip, type LoopbackClient } from '../../bench/loopback-client.js';
import type { RgbImage } from '../../frame/video-frame.js';
import { startFrontDoor, type RunningFrontDoor } from '../../server/cluster/front-door.js';
import type { WorkerRecord } from '../../server/cluster/registry.js';
import { parseServeConfig } from '../../server/config.js';
import { startWhepViewer, type WhepViewer } from '../../bench/whep-viewer.js';
import { until } from '../support/until.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SDS = path.join(ROOT, 'dist', 'bin', 'sds.js');
const HEARTBEAT_MS = 300;
// The whole cluster is token-protected: redirected requests must get through on the front door's signed ticket.
const TOKEN = 'cluster-test-token';
const AUTH = { Authorization: `Bearer ${TOKEN}` };
const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
const skip = hasRedis ? false : 'redis-server is not installed (apt-get install redis-server; .ci/run does)';

let redis: ChildProcess | undefined;
const workers: ChildProcess[] = [];
let front: RunningFrontDoor | undefined;
const publishers: LoopbackClient[] = [];
const viewers: WhepViewer[] = [];
let clip: RgbImage[];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}


const cluster = async (): Promise<WorkerRecord[]> => ((await (await fetch(`${front!.url}/api/cluster`, { headers: AUTH })).json()) as { workers: WorkerRecord[] }).workers;

function startWorker(redisUrl: string): ChildProcess {
  const child = spawn(
    process.execPath,
    [SDS, 'serve', '--role', 'worker', '--redis', redisUrl, '--host', '127.0.0.1', '--port', '0', '--heartbeat-ms', String(HEARTBEAT_MS),
      '--max-sessions', '4', '--max-sessions-per-client', '8', '--admission-ceiling', '1', '--workers', '1', '--intra-op-threads', '1', '--log-level', 'warn', '--token', TOKEN],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  workers.push(child);
  return child;
}

async function publish(name: string): Promise<LoopbackClient> {
  const client = await createLoopbackClient({
    whipUrl: `${front!.url}/whip/${name}`,
    codec: 'VP8',
    fps: 10,
    frames: clip,
    width: 320,
    height: 240,
    loop: true,
    direction: 'sendonly',
    token: TOKEN,
    onOutputFrame: () => {},
  });
  publishers.push(client);
  return client;
}

before(async () => {
  if (skip) return;
  clip = await makePanClip(await loadTestPhoto(), 320, 240, 20);
  const port = await freePort();
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const redisUrl = `redis://127.0.0.1:${port}`;
  // The front door waits for Redis by retrying its first connection.
  front = await until(
    'the front door connects to Redis',
    () => startFrontDoor(parseServeConfig(['--role', 'front', '--redis', redisUrl, '--host', '127.0.0.1', '--port', '0', '--heartbeat-ms', String(HEARTBEAT_MS), '--max-sessions-per-client', '8', '--token', TOKEN]), pino({ level: 'silent' })).catch(() => undefined),
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
  for (const w of workers) w.kill('SIGKILL');
  redis?.kill('SIGKILL');
});

test('publishers are spread over both workers, and each viewer is redirected to the worker that holds its stream', { skip, timeout: 90_000 }, async () => {
  const names = ['cam-a', 'cam-b', 'cam-c', 'cam-d'];
  for (const name of names) await publish(name);
  const spread = await until(
    'the workers report all four streams',
    async () => {
      const ws = await cluster();
      return ws.reduce((n, w) => n + w.streams.length, 0) === 4 ? ws : undefined;
    },
    10_000,
  );
  assert.deepEqual(spread.map((w) => w.streams.length).sort(), [2, 2], `streams per worker: ${spread.map((w) => `${w.url} ${w.streams.join(',')}`).join('; ')}`);
  // Each publisher's session resource lives on the worker that reports its stream.
  for (const [i, name] of names.entries()) {
    const holder = spread.find((w) => w.streams.includes(name))!;
    assert.equal(new URL(publishers[i]!.location).origin, holder.url, `${name}'s session is on its worker`);
  }
  for (const name of names) {
    const viewer = await startWhepViewer({ whepUrl: `${front!.url}/whep/${name}`, token: TOKEN });
    viewers.push(viewer);
    const holder = spread.find((w) => w.streams.includes(name))!;
    assert.equal(new URL(viewer.location).origin, holder.url, `the viewer of ${name} was sent to its worker`);
  }
  await until('every viewer decoded restyled frames', () => (viewers.every((v) => v.stats().framesDecoded >= 3) ? true : undefined), 30_000);
  // The web app is served by the front door, and its model description comes from a worker.
  const page = await fetch(`${front!.url}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<html/i);
  const model = await fetch(`${front!.url}/api/model`);
  assert.equal(model.status, 200);
  assert.ok(spread.some((w) => model.url.startsWith(w.url)), 'answered by a worker');
  assert.equal(((await model.json()) as { name: string }).name, spread[0]!.model);
  // A stream nobody publishes is not found, at the front door.
  assert.equal((await fetch(`${front!.url}/whep/nobody`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: 'v=0\r\n', redirect: 'manual' })).status, 401, 'the front door wants the token');
  assert.equal((await fetch(`${front!.url}/whep/nobody`, { method: 'POST', headers: { 'Content-Type': 'application/sdp', ...AUTH }, body: 'v=0\r\n', redirect: 'manual' })).status, 404);
  // A redirect carries a one-time signed ticket, because clients drop Authorization across origins; the
  // worker takes it once and refuses a replay, and refuses a request with neither token nor ticket.
  const redirect = await fetch(`${front!.url}/whip/cam-x`, { method: 'POST', headers: { 'Content-Type': 'application/sdp', ...AUTH }, body: 'v=0\r\n', redirect: 'manual' });
  assert.equal(redirect.status, 307);
  const target = new URL(redirect.headers.get('location')!);
  assert.ok(target.searchParams.get('sds_ticket'));
  const sdp = { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: 'v=0\r\n' };
  assert.equal((await fetch(target, sdp)).status, 400, 'the ticket admits the request (then the SDP is refused)');
  assert.equal((await fetch(target, sdp)).status, 401, 'a replayed ticket is refused');
  target.search = '';
  assert.equal((await fetch(target, sdp)).status, 401);
});

test('a killed worker leaves the registry within its TTL and new publishers go to the survivor', { skip, timeout: 60_000 }, async () => {
  const before = await cluster();
  assert.equal(before.length, 2);
  const victim = before[0]!;
  const survivor = before[1]!;
  // A worker's registry id ends in its process id.
  const victimChild = workers.find((w) => w.pid === Number(victim.id.split('-').pop()))!;
  assert.ok(victimChild, `the process of ${victim.id}`);
  const killedAt = Date.now();
  victimChild.kill('SIGKILL');
  await until('the killed worker left the registry', async () => ((await cluster()).every((w) => w.id !== victim.id) ? true : undefined), 10_000);
  const goneAfterMs = Date.now() - killedAt;
  // Three missed heartbeats, plus one beat of slack for timing on a busy machine.
  assert.ok(goneAfterMs <= 4 * HEARTBEAT_MS + 500, `left after ${goneAfterMs} ms`);
  process.stdout.write(`# killed worker left the registry after ${goneAfterMs} ms (heartbeat ${HEARTBEAT_MS} ms, TTL ${3 * HEARTBEAT_MS} ms)\n`);
  const late = await publish('cam-late');
  assert.equal(new URL(late.location).origin, survivor.url, 'the new publisher went to the surviving worker');
  // The killed worker's streams are gone with it: a viewer gets 404, not a redirect to a dead worker.
  const lost = victim.streams[0]!;
  assert.equal((await fetch(`${front!.url}/whep/${lost}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp', ...AUTH }, body: 'v=0\r\n', redirect: 'manual' })).status, 404);
});

test('with no worker able to take a stream, the front door answers 503 with Retry-After', { skip, timeout: 30_000 }, async () => {
  for (const w of workers) w.kill('SIGKILL');
  await until('no worker is registered', async () => ((await cluster()).length === 0 ? true : undefined), 10_000);
  const res = await fetch(`${front!.url}/whip/cam-z`, { method: 'POST', headers: { 'Content-Type': 'application/sdp', ...AUTH }, body: 'v=0\r\n', redirect: 'manual' });
  assert.equal(res.status, 503);
  assert.ok(Number(res.headers.get('retry-after')) > 0);
  assert.equal(((await (await fetch(`${front!.url}/healthz`)).json()) as { workers: number }).workers, 0);
});
