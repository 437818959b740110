// The cluster's shared state, in Redis. Every key a worker writes carries a TTL of three heartbeats, so
// a worker that dies (no DEL, no goodbye) leaves the registry by itself; nothing else ever has to clean
// up after it. Choosing a worker and reserving a slot on it is one Lua script (RESERVE_SCRIPT), so any
// number of front doors serving a burst at once cannot hand out the same slot twice.
//
//   sds:workers            set of worker ids (a hint: an id whose record expired is dropped on read)
//   sds:worker:<id>        JSON WorkerRecord, TTL 3 × heartbeat
//   sds:stream:<name>      the id of the worker that holds stream <name>, TTL 3 × heartbeat (or, for a name
//                          a publisher was just sent to, the reservation's TTL)
//   sds:reserved:<id>      sorted set of slots reserved on <id> by a front door and not yet reported by the
//                          worker: member `<random>@<client address>`, score = expiry (Redis time, ms). The
//                          worker removes a member in the heartbeat whose record first counts its session.
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import type { Logger } from 'pino';

export interface WorkerRecord {
  id: string;
  /** Base URL clients reach the worker at (its --public-url). */
  url: string;
  /** Live sessions and those being set up. */
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
  /** Sessions per client address (live and being set up), for the cluster-wide --max-sessions-per-client. */
  clients: Record<string, number>;
  /** Draining (SIGTERM or POST /admin/drain): keeps its streams and viewers, takes no new publisher. */
  draining: boolean;
  updatedAtMs: number;
}

export const KEYS = {
  workers: 'sds:workers',
  worker: (id: string) => `sds:worker:${id}`,
  stream: (name: string) => `sds:stream:${name}`,
  reserved: (id: string) => `sds:reserved:${id}`,
};

/** Missed heartbeats before a worker's entries expire. */
export const TTL_HEARTBEATS = 3;

/**
 * How long a reserved slot is held for a publisher the front door redirected: long enough to follow the
 * redirect and reach the worker (whose own count takes over from then on), short enough that a client that
 * never arrives gives the slot back soon.
 */
export const RESERVATION_TTL_MS = 10_000;

/** The query parameter that tells a worker which reservation a redirected publisher is using. */
export const SLOT_PARAM = 'sds_slot';

/** A Redis command that has had no answer in this long fails, so that a lost Redis never stalls a request. */
const COMMAND_TIMEOUT_MS = 1000;

export type RedisClient = ReturnType<typeof createClient>;

/**
 * Connect, failing fast with a clear message when Redis is not there at start-up. Once connected, a lost
 * Redis is reconnected with backoff for as long as it takes, and commands fail at once while it is away
 * (no offline queue): callers fall back (front door) or retry on their next heartbeat (worker).
 */
export async function connectRedis(url: string, logger: Logger): Promise<RedisClient> {
  let connected = false;
  let lost = false;
  const client = createClient({
    url,
    disableOfflineQueue: true,
    commandOptions: { timeout: COMMAND_TIMEOUT_MS },
    socket: {
      connectTimeout: 3000,
      // Capped at 1 s: how soon a returning Redis is noticed is how soon the cluster takes publishers again.
      reconnectStrategy: (retries, cause) => (!connected && retries >= 3 ? cause : Math.min(1000, 50 * 2 ** retries)),
    },
  });
  // One line when the connection is lost and one when it is back; never an unhandled 'error' event.
  client.on('error', (err: Error) => {
    if (connected && !lost) logger.warn({ err: err.message }, 'redis connection lost; reconnecting');
    if (connected) lost = true;
  });
  client.on('ready', () => {
    if (lost) logger.info('redis connection back');
    lost = false;
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
  /** Reservations whose publisher has reached this worker since the last heartbeat (members of sds:reserved:<id>). */
  private readonly arrived = new Set<string>();
  private failing = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly heartbeatMs: number,
    private readonly snapshot: () => Omit<WorkerRecord, 'updatedAtMs'>,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beatNow(), this.heartbeatMs);
    this.timer.unref();
    // Redis came back (restarted, maybe empty): register again now rather than at the next beat.
    this.redis.on('ready', this.onReady);
  }

  private readonly onReady = (): void => void this.beatNow();

  /** A publisher with reservation `slot` reached this worker: its session counts here from now on. */
  slotArrived(slot: string): void {
    this.arrived.add(slot);
  }

  /** Write the record now (a state change such as draining must reach the front doors at once). Never throws. */
  beatNow(): Promise<void> {
    this.beating = this.beating.then(() =>
      this.beat().then(
        () => {
          if (this.failing) this.logger.info('registry heartbeat written again');
          this.failing = false;
        },
        (err: Error) => {
          if (!this.failing)
            this.logger.warn({ err: err.message }, 'registry heartbeat failed; live sessions carry on, retrying every beat');
          this.failing = true;
        },
      ),
    );
    return this.beating;
  }

  private async beat(): Promise<void> {
    // The record and the reservations it now counts are taken in one synchronous step and written in one
    // transaction, so a front door never sees a session counted twice or not at all.
    const record: WorkerRecord = { ...this.snapshot(), updatedAtMs: Date.now() };
    const arrived = [...this.arrived];
    const ttl = TTL_HEARTBEATS * this.heartbeatMs;
    const tx = this.redis.multi();
    tx.set(KEYS.worker(record.id), JSON.stringify(record), { PX: ttl });
    tx.sAdd(KEYS.workers, record.id);
    if (arrived.length > 0) tx.zRem(KEYS.reserved(record.id), arrived);
    for (const name of record.streams) tx.set(KEYS.stream(name), record.id, { PX: ttl });
    // A stream that ended here is released at once, not after its TTL. (Should another worker already
    // hold the name again, its next heartbeat writes it back.)
    for (const gone of this.lastStreams.filter((n) => !record.streams.includes(n))) tx.del(KEYS.stream(gone));
    await tx.exec();
    for (const slot of arrived) this.arrived.delete(slot);
    this.lastStreams = record.streams;
  }

  /** Clean shutdown: stop beating and remove this worker's entries now. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.redis.off('ready', this.onReady);
    await this.beating;
    const id = this.snapshot().id;
    const tx = this.redis.multi();
    tx.del(KEYS.worker(id));
    tx.sRem(KEYS.workers, id);
    tx.del(KEYS.reserved(id));
    for (const name of this.lastStreams) tx.del(KEYS.stream(name));
    await tx.exec();
  }
}

/**
 * Choose a worker and reserve a slot on it, atomically (Redis runs a script alone). The worker with the
 * most free slots wins (its session slots minus its sessions minus slots reserved and not yet reported),
 * then the most headroom, then the smallest id; draining workers and those without headroom never do.
 * The per-client limit is counted over the whole cluster: the client's sessions in every worker's record
 * plus its live reservations. Time is Redis's own, so front doors on different machines agree.
 *
 * ARGV: reservation TTL ms, member (`<random>@<client>`), client address ('' = no limit), limit, stream name ('' = none)
 * Returns {'worker', record} | {'holder', record} | {'full'} | {'client-limit', held}.
 */
const RESERVE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl, member, client, limit, name = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
if name ~= '' then
  local holder = redis.call('GET', 'sds:stream:' .. name)
  if holder then
    local raw = redis.call('GET', 'sds:worker:' .. holder)
    if raw then return {'holder', raw} end
  end
end
local suffix = '@' .. client
local held = 0
local best, bestFree, bestHeadroom, bestRaw
for _, id in ipairs(redis.call('SMEMBERS', 'sds:workers')) do
  local raw = redis.call('GET', 'sds:worker:' .. id)
  if not raw then
    redis.call('SREM', 'sds:workers', id)
  else
    local w = cjson.decode(raw)
    local rkey = 'sds:reserved:' .. id
    redis.call('ZREMRANGEBYSCORE', rkey, '-inf', now)
    local reserved = redis.call('ZRANGE', rkey, 0, -1)
    if client ~= '' then
      if type(w.clients) == 'table' and w.clients[client] then held = held + w.clients[client] end
      for _, m in ipairs(reserved) do
        if string.sub(m, -#suffix) == suffix then held = held + 1 end
      end
    end
    local free = w.maxSessions - w.sessions - #reserved
    if w.draining ~= true and w.headroom > 0 and free > 0 then
      if not best or free > bestFree or (free == bestFree and (w.headroom > bestHeadroom or (w.headroom == bestHeadroom and id < best))) then
        best, bestFree, bestHeadroom, bestRaw = id, free, w.headroom, raw
      end
    end
  end
end
if client ~= '' and held >= limit then return {'client-limit', tostring(held)} end
if not best then return {'full'} end
local rkey = 'sds:reserved:' .. best
redis.call('ZADD', rkey, now + ttl, member)
redis.call('PEXPIRE', rkey, ttl)
if name ~= '' then redis.call('SET', 'sds:stream:' .. name, best, 'PX', ttl) end
return {'worker', bestRaw}
`;

export type Reservation =
  /** A slot is held on `worker` under `slot` (pass it on to the worker, SLOT_PARAM). */
  | { kind: 'worker'; worker: WorkerRecord; slot: string }
  /** The stream name is live on `worker` already (which answers 409 for a second publisher). */
  | { kind: 'holder'; worker: WorkerRecord }
  | { kind: 'full' }
  | { kind: 'client-limit'; held: number };

/**
 * The front door's side: reserve slots, find where streams are. Keeps the last registry it read: while
 * Redis is unreachable, lookups answer from it for `graceMs`, so live streams stay reachable through a
 * short Redis outage (reservations cannot be made then: they must be shared).
 */
export class RegistryReader {
  private known: { workers: WorkerRecord[]; atMs: number } | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly graceMs = 30_000,
    private readonly logger?: Logger,
  ) {}

  /** Re-read the registry every `intervalMs`, so the fallback is never older than that when Redis goes away. */
  startRefreshing(intervalMs: number): void {
    this.timer = setInterval(() => void this.workers().catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async reserve(clientAddress: string | undefined, perClientLimit: number, streamName?: string): Promise<Reservation> {
    const client = clientAddress === undefined ? '' : normalizeAddress(clientAddress);
    const member = `${randomBytes(9).toString('base64url')}@${client}`;
    const reply = (await this.redis.eval(RESERVE_SCRIPT, {
      arguments: [String(RESERVATION_TTL_MS), member, client, String(perClientLimit), streamName ?? ''],
    })) as string[];
    switch (reply[0]) {
      case 'worker':
        return { kind: 'worker', worker: JSON.parse(reply[1]!) as WorkerRecord, slot: member };
      case 'holder':
        return { kind: 'holder', worker: JSON.parse(reply[1]!) as WorkerRecord };
      case 'client-limit':
        return { kind: 'client-limit', held: Number(reply[1]) };
      default:
        return { kind: 'full' };
    }
  }

  /** Workers whose record has not expired (from the last known registry while Redis is away, within the grace). */
  async workers(): Promise<WorkerRecord[]> {
    try {
      const ids = await this.redis.sMembers(KEYS.workers);
      const records = ids.length === 0 ? [] : await this.redis.mGet(ids.map(KEYS.worker));
      const live = records.filter((raw): raw is string => raw !== null).map((raw) => JSON.parse(raw) as WorkerRecord);
      this.known = { workers: live, atMs: Date.now() };
      return live;
    } catch (err) {
      return this.fallback(err as Error);
    }
  }

  /** The live worker holding stream `name`, if any. */
  async holderOf(name: string): Promise<WorkerRecord | undefined> {
    try {
      const id = await this.redis.get(KEYS.stream(name));
      if (!id) return undefined;
      const raw = await this.redis.get(KEYS.worker(id));
      return raw ? (JSON.parse(raw) as WorkerRecord) : undefined;
    } catch (err) {
      return this.fallback(err as Error).find((w) => w.streams.includes(name));
    }
  }

  private fallback(err: Error): WorkerRecord[] {
    const ageMs = this.known ? Date.now() - this.known.atMs : Infinity;
    if (ageMs > this.graceMs) throw new RegistryUnavailableError(`the cluster registry (Redis) is unreachable: ${err.message}`);
    this.logger?.debug({ err: err.message, ageMs }, 'registry unreachable; answering from the last known registry');
    return this.known!.workers;
  }
}

/** Redis is away and the last known registry is older than the grace period (HTTP 503). */
export class RegistryUnavailableError extends Error {
  override name = 'RegistryUnavailableError';
  readonly status = 503;
  readonly retryAfterSeconds = 2;
}

/** One key per client: an IPv4 peer on a dual-stack socket appears as ::ffff:a.b.c.d. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
