// The cluster's shared state, in Redis. Every key a worker writes carries a TTL of three heartbeats, so
// a worker that dies (no DEL, no goodbye) leaves the registry by itself; nothing else ever has to clean
// up after it, and the front door keeps no state of its own.
//
//   sds:workers            set of worker ids (a hint: an id whose record expired is dropped on read)
//   sds:worker:<id>        JSON WorkerRecord, TTL 3 × heartbeat
//   sds:stream:<name>      the id of the worker that holds stream <name>, TTL 3 × heartbeat
//   sds:pending:<id>       sessions the front door sent to <id> since its last heartbeat (INCR), so a burst
//                          of publishers spreads out before the worker's next report; reset by the heartbeat
import { createClient } from 'redis';
import type { Logger } from 'pino';

export interface WorkerRecord {
  id: string;
  /** Base URL clients reach the worker at (its --public-url). */
  url: string;
  sessions: number;
  maxSessions: number;
  viewers: number;
  /** Named streams live on this worker. */
  streams: string[];
  /**
   * Capacity left for one more session, 0..1: the admission ceiling minus the measured model
   * utilization it would reach with one more session (0 when full). See realtime/admission.ts.
   */
  headroom: number;
  model: string;
  updatedAtMs: number;
}

export const KEYS = {
  workers: 'sds:workers',
  worker: (id: string) => `sds:worker:${id}`,
  stream: (name: string) => `sds:stream:${name}`,
  pending: (id: string) => `sds:pending:${id}`,
};

/** Missed heartbeats before a worker's entries expire. */
export const TTL_HEARTBEATS = 3;

export type RedisClient = ReturnType<typeof createClient>;

/** Connect, failing fast with a clear message when Redis is not there (rather than retrying forever). */
export async function connectRedis(url: string, logger: Logger): Promise<RedisClient> {
  let connected = false;
  const client = createClient({
    url,
    socket: {
      connectTimeout: 3000,
      // Start-up gives up after a few tries with the cause; once connected, reconnect with backoff
      // for as long as it takes: a Redis restart must not end a worker.
      reconnectStrategy: (retries, cause) => (!connected && retries >= 3 ? cause : Math.min(2000, 100 * 2 ** retries)),
    },
  });
  client.on('error', (err: Error) => {
    if (connected) logger.warn({ err: err.message }, 'redis connection problem; retrying');
  });
  try {
    await client.connect();
  } catch (err) {
    await client.destroy();
    throw new Error(`cannot connect to Redis at ${url}: ${(err as Error).message}`);
  }
  connected = true;
  return client;
}

/** A worker's side: keep its record fresh while it lives; remove it on a clean shutdown. */
export class WorkerRegistration {
  private timer: NodeJS.Timeout | undefined;
  private lastStreams: string[] = [];
  private beating: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: RedisClient,
    private readonly heartbeatMs: number,
    private readonly snapshot: () => Omit<WorkerRecord, 'updatedAtMs'>,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => {
      this.beating = this.beat().catch((err: Error) => this.logger.warn({ err: err.message }, 'registry heartbeat failed'));
    }, this.heartbeatMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    const record: WorkerRecord = { ...this.snapshot(), updatedAtMs: Date.now() };
    const ttl = TTL_HEARTBEATS * this.heartbeatMs;
    const tx = this.redis.multi();
    tx.set(KEYS.worker(record.id), JSON.stringify(record), { PX: ttl });
    tx.sAdd(KEYS.workers, record.id);
    tx.del(KEYS.pending(record.id));
    for (const name of record.streams) tx.set(KEYS.stream(name), record.id, { PX: ttl });
    // A stream that ended here is released at once, not after its TTL. (Should another worker already
    // hold the name again, its next heartbeat writes it back.)
    for (const gone of this.lastStreams.filter((n) => !record.streams.includes(n))) tx.del(KEYS.stream(gone));
    await tx.exec();
    this.lastStreams = record.streams;
  }

  /** Clean shutdown: stop beating and remove this worker's entries now. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
    const id = this.snapshot().id;
    const tx = this.redis.multi();
    tx.del(KEYS.worker(id));
    tx.sRem(KEYS.workers, id);
    tx.del(KEYS.pending(id));
    for (const name of this.lastStreams) tx.del(KEYS.stream(name));
    await tx.exec();
  }
}

/** The front door's side: read the live workers and where each stream is. */
export class RegistryReader {
  constructor(private readonly redis: RedisClient) {}

  /** Workers whose record has not expired, with the sessions the front door sent them since their last report. */
  async workers(): Promise<Array<WorkerRecord & { pending: number }>> {
    const ids = await this.redis.sMembers(KEYS.workers);
    if (ids.length === 0) return [];
    const [records, pending] = await Promise.all([this.redis.mGet(ids.map(KEYS.worker)), this.redis.mGet(ids.map(KEYS.pending))]);
    const live: Array<WorkerRecord & { pending: number }> = [];
    const expired: string[] = [];
    ids.forEach((id, i) => {
      const raw = records[i];
      if (!raw) return void expired.push(id);
      live.push({ ...(JSON.parse(raw) as WorkerRecord), pending: Number(pending[i] ?? 0) });
    });
    if (expired.length > 0) await this.redis.sRem(KEYS.workers, expired);
    return live;
  }

  /** The live worker holding stream `name`, if any. */
  async holderOf(name: string): Promise<WorkerRecord | undefined> {
    const id = await this.redis.get(KEYS.stream(name));
    if (!id) return undefined;
    const raw = await this.redis.get(KEYS.worker(id));
    return raw ? (JSON.parse(raw) as WorkerRecord) : undefined;
  }

  /** Count a session sent to `id` until its next heartbeat reports it. */
  async claim(id: string, heartbeatMs: number): Promise<void> {
    const tx = this.redis.multi();
    tx.incr(KEYS.pending(id));
    tx.pExpire(KEYS.pending(id), TTL_HEARTBEATS * heartbeatMs);
    await tx.exec();
  }
}

/**
 * Where the next publisher goes: among workers with headroom and a free session slot (counting
 * sessions already sent their way), the least loaded by session share, then the most headroom.
 */
export function chooseWorker<T extends WorkerRecord & { pending: number }>(workers: readonly T[]): T | undefined {
  const open = workers.filter((w) => w.headroom > 0 && w.sessions + w.pending < w.maxSessions);
  open.sort((a, b) => (a.sessions + a.pending) / a.maxSessions - (b.sessions + b.pending) / b.maxSessions || b.headroom - a.headroom || a.id.localeCompare(b.id));
  return open[0];
}
