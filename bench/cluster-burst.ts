// `sds bench cluster-burst`: how a burst of publishers arriving at the same moment spreads over a cluster. Starts
// a real redis-server on a free loopback port, two worker processes and one or more front doors (in process), then
// per run sends N real WHIP publishers (werift, a looped clip) at once, alternating between the front doors, notes
// which worker each session landed on, ends them all and waits until the workers report none before the next run.
// Needs redis-server on PATH (Debian: apt-get install redis-server).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { startFrontDoor, type RunningFrontDoor } from '../server/cluster/front-door.js';
import type { WorkerRecord } from '../server/cluster/registry.js';
import { PACKAGE_ROOT, parseServeConfig } from '../server/config.js';
import { createLoopbackClient, loadTestPhoto, makePanClip } from './loopback-client.js';

export interface ClusterBurstOptions {
  runs: number;
  publishers: number;
  frontDoors: number;
  /** Session slots per worker (--max-sessions). */
  maxSessions: number;
}

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

async function poll<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
  }
  throw new Error(`timed out waiting until ${what}`);
}

/** Per run, the number of sessions each worker got, in a fixed worker order (e.g. "4+4"). */
export async function runClusterBurst(options: ClusterBurstOptions, log: (line: string) => void): Promise<string[]> {
  const redisPort = await freePort();
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const children: ChildProcess[] = [
    spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }),
  ];
  const fronts: RunningFrontDoor[] = [];
  try {
    const frontArgs = [
      '--role',
      'front',
      '--redis',
      redisUrl,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--heartbeat-ms',
      '300',
      '--max-sessions-per-client',
      '1000',
    ];
    for (let i = 0; i < options.frontDoors; i++) {
      fronts.push(
        await poll(
          'the front door connects to Redis',
          () => startFrontDoor(parseServeConfig(frontArgs), pino({ level: 'silent' })),
          10_000,
        ),
      );
    }
    for (let i = 0; i < 2; i++) {
      children.push(
        spawn(
          process.execPath,
          [
            path.join(PACKAGE_ROOT, 'dist', 'bin', 'sds.js'),
            'serve',
            '--role',
            'worker',
            '--redis',
            redisUrl,
            '--host',
            '127.0.0.1',
            '--port',
            '0',
            '--heartbeat-ms',
            '300',
            '--max-sessions',
            String(options.maxSessions),
            '--max-sessions-per-client',
            '1000',
            '--admission-ceiling',
            '1',
            '--workers',
            '1',
            '--intra-op-threads',
            '1',
            '--log-level',
            'warn',
          ],
          { stdio: ['ignore', 'ignore', 'inherit'] },
        ),
      );
    }
    const cluster = async (): Promise<WorkerRecord[]> =>
      ((await (await fetch(`${fronts[0]!.url}/api/cluster`)).json()) as { workers: WorkerRecord[] }).workers;
    const workers = (
      await poll('two workers registered', async () => ((await cluster()).length === 2 ? await cluster() : undefined), 60_000)
    )
      .map((w) => w.url)
      .sort();
    const clip = await makePanClip(await loadTestPhoto(), 320, 240, 10);
    const spreads: string[] = [];
    for (let run = 1; run <= options.runs; run++) {
      const clients = await Promise.all(
        Array.from({ length: options.publishers }, (_, i) =>
          createLoopbackClient({
            whipUrl: `${fronts[i % fronts.length]!.url}/whip`,
            codec: 'VP8',
            fps: 10,
            frames: clip,
            width: 320,
            height: 240,
            loop: true,
            direction: 'sendonly',
            connectTimeoutMs: 30_000,
            onOutputFrame: () => {},
          }).catch((err: Error) => err),
        ),
      );
      const counts = workers.map((url) => clients.filter((c) => !(c instanceof Error) && new URL(c.location).origin === url).length);
      const refused = clients.filter((c) => c instanceof Error).length;
      const spread = counts.join('+') + (refused > 0 ? ` (${refused} refused)` : '');
      spreads.push(spread);
      log(`run ${run}: ${spread}`);
      await Promise.all(clients.map((c) => (c instanceof Error ? undefined : c.close())));
      await poll(
        'the workers report no session',
        async () => ((await cluster()).every((w) => w.sessions === 0) ? true : undefined),
        30_000,
      );
    }
    return spreads;
  } finally {
    for (const f of fronts) await f.close();
    for (const c of children) c.kill('SIGKILL');
  }
}

export async function runClusterBurstCli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      publishers: { type: 'string' },
      'front-doors': { type: 'string' },
      'max-sessions': { type: 'string' },
    },
  });
  const options: ClusterBurstOptions = {
    runs: Number(values.runs ?? 10),
    publishers: Number(values.publishers ?? 8),
    frontDoors: Number(values['front-doors'] ?? 2),
    maxSessions: Number(values['max-sessions'] ?? 4),
  };
  const spreads = await runClusterBurst(options, (line) => process.stdout.write(`${line}\n`));
  const even = spreads.filter((s) => {
    const [a, b] = s.split('+').map((n) => parseInt(n, 10));
    return Math.abs(a! - b!) <= options.publishers % 2 && !s.includes('refused');
  }).length;
  process.stdout.write(
    `${options.publishers} publishers at once over 2 workers through ${options.frontDoors} front door(s), ${options.runs} runs: ${spreads.join(', ')} — even in ${even}/${options.runs}\n`,
  );
  return even === options.runs ? 0 : 1;
}
