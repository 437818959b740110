// A cluster on loopback, for the cluster bench and the cluster tests: a real redis-server on a free port (no
// persistence; it can be stopped and started again on that port, as an operator restarting Redis would, and
// comes back empty), worker processes (`sds serve --role worker`) and front doors in this process.
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { startFrontDoor, type RunningFrontDoor } from '../server/cluster/front-door.js';
import type { WorkerRecord } from '../server/cluster/registry.js';
import { PACKAGE_ROOT, parseServeConfig } from '../server/config.js';
import { until } from './until.js';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class RedisServer {
  private child: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort());
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Start (again) on the same port; resolves once it accepts connections. */
  async restart(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    await until('redis-server accepts connections', () => accepts(this.port), 10_000, 20);
  }

  /** Stop it (SIGKILL: gone at once, as in a crash); resolves once the process has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }
}

/** The flags every cluster role here shares: the Redis to meet at, loopback on any free port, the heartbeat. */
const clusterArgs = (role: 'front' | 'worker', redisUrl: string, heartbeatMs: number): string[] => [
  '--role',
  role,
  '--redis',
  redisUrl,
  '--host',
  '127.0.0.1',
  '--port',
  '0',
  '--heartbeat-ms',
  String(heartbeatMs),
];

/** A worker that shares a small machine with others: one inference thread, admitted up to full load, warnings only. */
export const SMALL_WORKER_ARGS: readonly string[] = [
  '--admission-ceiling',
  '1',
  '--workers',
  '1',
  '--intra-op-threads',
  '1',
  '--log-level',
  'warn',
];

/** A worker process of the built server (dist/bin/sds.js); `extraArgs` follow the cluster flags. Its stderr is ours. */
export function spawnClusterWorker(redisUrl: string, heartbeatMs: number, extraArgs: readonly string[] = []): ChildProcess {
  return spawn(
    process.execPath,
    [path.join(PACKAGE_ROOT, 'dist', 'bin', 'sds.js'), 'serve', ...clusterArgs('worker', redisUrl, heartbeatMs), ...extraArgs],
    {
      cwd: PACKAGE_ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
}

/** A front door in this process, logging nothing; `extraArgs` follow the cluster flags. */
export function startLoopbackFrontDoor(redisUrl: string, heartbeatMs: number, extraArgs: string[] = []): Promise<RunningFrontDoor> {
  return startFrontDoor(parseServeConfig([...clusterArgs('front', redisUrl, heartbeatMs), ...extraArgs]), pino({ level: 'silent' }));
}

/** The workers a front door's registry holds (GET /api/cluster). */
export async function clusterWorkers(frontUrl: string, headers: Record<string, string> = {}): Promise<WorkerRecord[]> {
  return ((await (await fetch(`${frontUrl}/api/cluster`, { headers })).json()) as { workers: WorkerRecord[] }).workers;
}
