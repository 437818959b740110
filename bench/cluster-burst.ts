// `sds bench cluster-burst`: how a burst of publishers arriving at the same moment spreads over a cluster. Starts
// a real redis-server on a free loopback port, two worker processes and one or more front doors (in process), then
// per run sends N real WHIP publishers (werift, a looped clip) at once, alternating between the front doors, notes
// which worker each session landed on, ends them all and waits until the workers report none before the next run.
// Needs redis-server on PATH (Debian: apt-get install redis-server).
import type { ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import type { RunningFrontDoor } from '../server/cluster/front-door.js';
import type { WorkerRecord } from '../server/cluster/registry.js';
import { loadTestPhoto, makePanClip, publishLoopedClip } from './loopback-client.js';
import { clusterWorkers, RedisServer, SMALL_WORKER_ARGS, spawnClusterWorker, startLoopbackFrontDoor } from './loopback-cluster.js';
import { until } from './until.js';

const HEARTBEAT_MS = 300;

export interface ClusterBurstOptions {
  runs: number;
  publishers: number;
  frontDoors: number;
  /** Session slots per worker (--max-sessions). */
  maxSessions: number;
}

/** Per run, the number of sessions each worker got, in a fixed worker order (e.g. "4+4"). */
export async function runClusterBurst(options: ClusterBurstOptions, log: (line: string) => void): Promise<string[]> {
  const redis = await RedisServer.start();
  const workers: ChildProcess[] = [];
  const fronts: RunningFrontDoor[] = [];
  try {
    for (let i = 0; i < options.frontDoors; i++) {
      fronts.push(await startLoopbackFrontDoor(redis.url, HEARTBEAT_MS, ['--max-sessions-per-client', '1000']));
    }
    for (let i = 0; i < 2; i++) {
      workers.push(
        spawnClusterWorker(redis.url, HEARTBEAT_MS, [
          '--max-sessions',
          String(options.maxSessions),
          '--max-sessions-per-client',
          '1000',
          ...SMALL_WORKER_ARGS,
        ]),
      );
    }
    const cluster = (): Promise<WorkerRecord[] | undefined> => clusterWorkers(fronts[0]!.url).catch(() => undefined);
    const registered = await until(
      'two workers registered',
      async () => {
        const ws = await cluster();
        return ws?.length === 2 ? ws : undefined;
      },
      60_000,
    );
    const workerUrls = registered.map((w) => w.url).sort();
    const clip = await makePanClip(await loadTestPhoto(), 320, 240, 10);
    const spreads: string[] = [];
    for (let run = 1; run <= options.runs; run++) {
      const clients = await Promise.all(
        Array.from({ length: options.publishers }, (_, i) =>
          publishLoopedClip(`${fronts[i % fronts.length]!.url}/whip`, clip, { direction: 'sendonly', connectTimeoutMs: 30_000 }).catch(
            (err: Error) => err,
          ),
        ),
      );
      const counts = workerUrls.map((url) => clients.filter((c) => !(c instanceof Error) && new URL(c.location).origin === url).length);
      const refused = clients.filter((c) => c instanceof Error).length;
      const spread = counts.join('+') + (refused > 0 ? ` (${refused} refused)` : '');
      spreads.push(spread);
      log(`run ${run}: ${spread}`);
      await Promise.all(clients.map((c) => (c instanceof Error ? undefined : c.close())));
      await until('the workers report no session', async () => (await cluster())?.every((w) => w.sessions === 0), 30_000);
    }
    return spreads;
  } finally {
    for (const f of fronts) await f.close();
    for (const w of workers) w.kill('SIGKILL');
    await redis.stop();
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
