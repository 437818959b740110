// Server configuration from command-line flags and environment variables (flags win). Parsed and
// validated once at start-up; a bad value stops the server with a message naming the flag.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createSecureContext } from 'node:tls';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ExecutionProvider, ImageBlendPlacement } from '../models/restyle-types.js';
import { cachedSnapshot, DEFAULT_REVISION, hubCacheDir, parseHubModelRef } from '../models/hub-cache.js';
import type { IceNetwork } from '../stream/ice-network.js';
import { ConfigError } from './config-error.js';
import { checkPortRangeCapacity, parseIceNetwork, type Interfaces } from './network-config.js';

export type VideoCodec = 'VP8' | 'H264';

export interface ServerConfig {
  host: string;
  port: number;
  modelDir: string;
  provider: ExecutionProvider;
  fallbackToCpu: boolean;
  /** Inference worker threads and ONNX Runtime intra-op threads per worker. */
  workers: number;
  intraOpThreads: number;
  budgetMs: number;
  /** Model input resolution; undefined = the model's native resolution. */
  resolution?: { width: number; height: number };
  /** Where temporal consistency warps and blends the previous output image (models/image-blend-graph.ts). */
  imageBlend: ImageBlendPlacement;
  codecs: VideoCodec[];
  maxBitrateKbps: number;
  maxSessions: number;
  /** Live WHIP sessions one client address may hold at once (503 beyond that). */
  maxSessionsPerClient: number;
  /** Admission control: refuse a session predicted to push measured model utilization past this. */
  admissionCeiling: number;
  /**
   * Bearer token required on POST /whip, /sessions/... and the /ws upgrade; undefined = no auth.
   * A secret: never log it.
   */
  token?: string;
  /** A request must arrive in full (headers and body) within this long, or its socket is closed. */
  requestTimeoutMs: number;
  /** A session whose publisher sends no media for this long is ended (a vanished peer). */
  mediaTimeoutMs: number;
  /** Origins allowed to call the API from a browser page on another origin ('*' = any). */
  corsOrigins: string[];
  /**
   * STUN/TURN servers advertised to WHIP/WHEP clients as `Link: <url>; rel="ice-server"` (RFC 9725 §4.6).
   * Credentials are secrets: sent only to authorized requests, never logged.
   */
  iceServers: IceServerConfig[];
  /**
   * The addresses and UDP ports of the server's own peer connections (publishers and viewers alike):
   * announced addresses, chosen interfaces, port range (README "Behind NAT and in containers").
   */
  network: IceNetwork;
  /** Live WHEP viewers over all streams before 503. */
  maxViewers: number;
  /**
   * Longest jitter buffering (ms) asked of receivers with the RTP playout-delay extension; undefined =
   * the extension is not sent and receivers choose (stream/playout-delay.ts).
   */
  playoutDelayMaxMs?: number;
  logLevel: string;
  /**
   * Serve HTTPS (app, API, WHIP/WHEP and the WebSocket) with this PEM certificate (chain) and key;
   * undefined = plain HTTP. The key is a secret: never log it.
   */
  tls?: TlsFiles;
  /**
   * standalone: one machine, no Redis (the default). worker: serve sessions and register in Redis.
   * front: the stateless front door that redirects WHIP/WHEP to workers (README "Scaling out").
   */
  role: ServerRole;
  /** redis://… for the worker and front roles. */
  redisUrl?: string;
  /** A worker's base URL as clients reach it (advertised in Redis, used in Location headers). */
  publicUrl?: string;
  /** How often a worker refreshes its registry entry; the entry expires after 3 missed beats. */
  heartbeatMs: number;
  /**
   * Bearer token for the operator's endpoints (POST /admin/drain); undefined = the --token, and with
   * neither the endpoints answer 403. A secret: never log it.
   */
  adminToken?: string;
  /** A draining server (SIGTERM, POST /admin/drain) ends the sessions still live after this long, then exits. */
  drainTimeoutMs: number;
  /** While Redis is unreachable, the front door answers stream lookups from its last registry read for this long. */
  registryGraceMs: number;
}

export interface TlsFiles {
  cert: string;
  key: string;
}

export type ServerRole = 'standalone' | 'worker' | 'front';

export interface IceServerConfig {
  /** A stun:, stuns:, turn: or turns: URI (RFC 7064/7065). */
  url: string;
  username?: string;
  credential?: string;
}

/** The package root (where package.json lives), from the compiled file's location (dist/server/). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEFAULT_MODEL_DIR = path.join(PACKAGE_ROOT, 'models', 'default');

export { ConfigError };

/** Flags that may be given more than once (their values join a comma-separated list). */
const REPEATABLE = new Set(['announce-address']);

/** Flag name → [environment variable, description]. Drives both parsing and `--help`. */
export const SERVE_OPTIONS = {
  host: ['HOST', 'address to listen on (default 0.0.0.0)'],
  port: ['PORT', 'HTTP port (default 8080)'],
  model: [
    'MODEL',
    'model folder (sds-model/1 manifest or diffusers ONNX export), or hf:<org>/<name>[@rev] pulled with `sds models pull` (default: embedded model)',
  ],
  provider: ['PROVIDER', 'execution provider: cpu | cuda | webgpu (default cpu)'],
  'no-cpu-fallback': ['NO_CPU_FALLBACK', 'fail instead of falling back to CPU when the provider is unavailable'],
  workers: ['WORKERS', 'inference worker threads (default 1)'],
  'intra-op-threads': ['INTRA_OP_THREADS', 'ONNX Runtime threads per worker (default: CPU count)'],
  'budget-ms': ['BUDGET_MS', 'per-frame latency budget in ms (default 40)'],
  resolution: ['RESOLUTION', "model input WxH, e.g. 320x256 (default: the model's native resolution)"],
  'image-blend': [
    'IMAGE_BLEND',
    'where consistency warps and blends the previous output: auto | host | graph (default auto: a GridSample graph on cuda/webgpu, the host on cpu)',
  ],
  codecs: ['CODECS', 'video codecs offered, in preference order (default VP8,H264)'],
  'max-bitrate-kbps': ['MAX_BITRATE_KBPS', 'cap on the encoder bitrate (default 2000)'],
  'max-sessions': ['MAX_SESSIONS', 'concurrent publisher sessions before 503 (default 4)'],
  'admission-ceiling': [
    'ADMISSION_CEILING',
    'refuse a session predicted to push model utilization past this, 0..1 (default 0.85; 1 = off)',
  ],
  'max-sessions-per-client': ['MAX_SESSIONS_PER_CLIENT', 'concurrent sessions one client address may hold before 503 (default 2)'],
  token: ['TOKEN', 'require `Authorization: Bearer <token>` on WHIP, session and WebSocket endpoints (default: none)'],
  'request-timeout-ms': ['REQUEST_TIMEOUT_MS', 'close a connection whose request has not fully arrived after this long (default 15000)'],
  'media-timeout-ms': ['MEDIA_TIMEOUT_MS', 'end a session after this long without media (default 10000)'],
  'cors-origin': ['CORS_ORIGIN', 'comma-separated origins allowed cross-origin, or * (default: none)'],
  'ice-server': [
    'ICE_SERVERS',
    'comma-separated STUN/TURN URIs advertised to WHIP/WHEP clients, e.g. stun:stun.example.net:3478,turn:user:pass@turn.example.net:3478?transport=udp (default: none)',
  ],
  'announce-address': [
    'ANNOUNCE_ADDRESSES',
    'IP address announced as an ICE host candidate besides the local ones, for 1:1 NAT or published container ports; repeat the flag or comma-separate (default: none)',
  ],
  'ice-interfaces': [
    'ICE_INTERFACES',
    'comma-separated interface names (eth0, lo) or local addresses to gather ICE candidates on (default: every non-loopback interface)',
  ],
  'udp-port-range': ['UDP_PORT_RANGE', 'MIN-MAX: the UDP ports every peer connection binds, e.g. 40000-40100 (default: any free port)'],
  'max-viewers': ['MAX_VIEWERS', 'live WHEP viewers over all streams before 503 (default 32)'],
  'playout-delay-ms': [
    'PLAYOUT_DELAY_MS',
    'ask receivers to buffer at most this many ms before showing a frame (RTP playout-delay), or off (default 0: show at once)',
  ],
  'tls-cert': [
    'TLS_CERT',
    'PEM certificate (chain) file: serve HTTPS with it and --tls-key; `sds cert` makes a self-signed one (default: plain HTTP)',
  ],
  'tls-key': ['TLS_KEY', 'PEM private key file for --tls-cert'],
  'log-level': ['LOG_LEVEL', 'trace | debug | info | warn | error (default info)'],
  role: ['ROLE', 'standalone | worker | front: scale out over several machines through Redis (default standalone)'],
  redis: ['REDIS_URL', 'Redis URL for --role worker and front, e.g. redis://127.0.0.1:6379'],
  'public-url': ['PUBLIC_URL', "a worker's base URL as clients reach it, e.g. http://10.0.0.5:8080 (default: http://<host>:<port>)"],
  'heartbeat-ms': ['HEARTBEAT_MS', 'how often a worker refreshes its registry entry; it expires after 3 missed (default 1000)'],
  'admin-token': ['ADMIN_TOKEN', 'bearer token for POST /admin/drain (default: the --token; with neither, the endpoint is off)'],
  'drain-timeout-ms': [
    'DRAIN_TIMEOUT_MS',
    'a draining worker (SIGTERM, POST /admin/drain) ends sessions still live after this long, then exits (default 600000)',
  ],
  'registry-grace-ms': [
    'REGISTRY_GRACE_MS',
    'front door: while Redis is unreachable, route viewers from the last registry read for this long (default 30000)',
  ],
} as const;

/**
 * `serve`'s flags as node:util parseArgs options. The bench commands that start a server parse with these too, so
 * that a serve flag's value (`--model DIR`) is read as its value and passed on, not as a stray positional.
 */
export const SERVE_PARSE_OPTIONS = Object.fromEntries(
  Object.keys(SERVE_OPTIONS).map((k) => [
    k,
    { type: k === 'no-cpu-fallback' ? 'boolean' : 'string', ...(REPEATABLE.has(k) ? { multiple: true } : {}) },
  ]),
) as Record<keyof typeof SERVE_OPTIONS, { type: 'string' | 'boolean'; multiple?: boolean }>;

/**
 * `interfaces` is this machine's network interfaces (os.networkInterfaces()), against which --ice-interfaces is
 * resolved and --udp-port-range's size checked.
 */
export function parseServeConfig(argv: string[], env: NodeJS.ProcessEnv = process.env, interfaces?: Interfaces): ServerConfig {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: SERVE_PARSE_OPTIONS,
  });
  const get = (flag: keyof typeof SERVE_OPTIONS): string | undefined => {
    const v = values[flag];
    if (typeof v === 'string') return v;
    if (Array.isArray(v)) return v.join(',');
    if (v === true) return 'true';
    return env[SERVE_OPTIONS[flag][0]];
  };
  const cpus = availableParallelism();
  const config: ServerConfig = {
    host: get('host') ?? '0.0.0.0',
    port: int('port', get('port'), 8080, 0, 65535),
    modelDir: modelDir(get('model'), env),
    provider: oneOf('provider', get('provider') ?? 'cpu', ['cpu', 'cuda', 'webgpu'] as const),
    fallbackToCpu: !truthy(get('no-cpu-fallback')),
    workers: int('workers', get('workers'), 1, 1, 64),
    intraOpThreads: int('intra-op-threads', get('intra-op-threads'), cpus, 1, 256),
    budgetMs: int('budget-ms', get('budget-ms'), 40, 1, 10_000),
    resolution: resolution(get('resolution')),
    imageBlend: oneOf('image-blend', get('image-blend') ?? 'auto', ['auto', 'host', 'graph'] as const),
    codecs: codecs(get('codecs') ?? 'VP8,H264'),
    maxBitrateKbps: int('max-bitrate-kbps', get('max-bitrate-kbps'), 2000, 100, 50_000),
    maxSessions: int('max-sessions', get('max-sessions'), 4, 1, 1000),
    admissionCeiling: fraction('admission-ceiling', get('admission-ceiling'), 0.85),
    maxSessionsPerClient: int('max-sessions-per-client', get('max-sessions-per-client'), 2, 1, 1000),
    token: token(get('token')),
    requestTimeoutMs: int('request-timeout-ms', get('request-timeout-ms'), 15_000, 100, 600_000),
    corsOrigins: (get('cors-origin') ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean),
    mediaTimeoutMs: int('media-timeout-ms', get('media-timeout-ms'), 10_000, 500, 600_000),
    iceServers: iceServers(get('ice-server')),
    network: parseIceNetwork(
      { announce: get('announce-address'), interfaces: get('ice-interfaces'), portRange: get('udp-port-range') },
      interfaces,
    ),
    maxViewers: int('max-viewers', get('max-viewers'), 32, 0, 10_000),
    playoutDelayMaxMs: get('playout-delay-ms') === 'off' ? undefined : int('playout-delay-ms', get('playout-delay-ms'), 0, 0, 40_950),
    ...tlsFiles(get('tls-cert'), get('tls-key')),
    logLevel: oneOf('log-level', get('log-level') ?? 'info', ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const),
    ...cluster(get('role'), get('redis'), get('public-url'), get('heartbeat-ms')),
    adminToken: token(get('admin-token'), 'admin-token'),
    drainTimeoutMs: int('drain-timeout-ms', get('drain-timeout-ms'), 600_000, 0, 86_400_000),
    registryGraceMs: int('registry-grace-ms', get('registry-grace-ms'), 30_000, 0, 3_600_000),
  };
  // The front door holds no peer connections; everyone else needs a port for each.
  if (config.role !== 'front') checkPortRangeCapacity(config.network, config, interfaces);
  return config;
}

function cluster(
  role: string | undefined,
  redis: string | undefined,
  publicUrl: string | undefined,
  heartbeat: string | undefined,
): Pick<ServerConfig, 'role' | 'redisUrl' | 'publicUrl' | 'heartbeatMs'> {
  const r = oneOf('role', role ?? 'standalone', ['standalone', 'worker', 'front'] as const);
  if (r !== 'standalone' && !redis) throw new ConfigError(`--role ${r} needs --redis redis://host:port`);
  if (redis && !/^rediss?:\/\//.test(redis)) throw new ConfigError(`--redis must be a redis:// or rediss:// URL (got "${redis}")`);
  let url: string | undefined;
  if (publicUrl) {
    try {
      const u = new URL(publicUrl);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
      url = u.origin;
    } catch {
      throw new ConfigError(`--public-url must be an http(s) URL like http://10.0.0.5:8080 (got "${publicUrl}")`);
    }
  }
  return { role: r, redisUrl: redis, publicUrl: url, heartbeatMs: int('heartbeat-ms', heartbeat, 1000, 100, 60_000) };
}

/** A folder, or `hf:<org>/<name>[@revision]`: a model pulled into the Hugging Face cache (sds models pull). */
function modelDir(raw: string | undefined, env: NodeJS.ProcessEnv): string {
  if (!raw?.startsWith('hf:')) return path.resolve(raw ?? DEFAULT_MODEL_DIR);
  const ref = parseHubModelRef(raw.slice(3));
  if (!ref)
    throw new ConfigError(`--model hf:<org>/<name>[@revision] names a Hugging Face model, e.g. hf:onnxruntime/sd-turbo (got "${raw}")`);
  const cache = hubCacheDir(env);
  const snapshot = cachedSnapshot(ref, cache);
  if (!snapshot) {
    const revision = ref.revision === DEFAULT_REVISION ? '' : ` --revision ${ref.revision}`;
    throw new ConfigError(
      `--model ${raw}: not in the Hugging Face cache (${cache}); download it first with: sds models pull ${ref.repo}${revision}`,
    );
  }
  return snapshot;
}

function tlsFiles(certFile: string | undefined, keyFile: string | undefined): Pick<ServerConfig, 'tls'> {
  if (!certFile && !keyFile) return {};
  if (!certFile || !keyFile)
    throw new ConfigError(`--tls-cert and --tls-key go together (got only ${certFile ? '--tls-cert' : '--tls-key'})`);
  const read = (flag: string, file: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`--${flag}: cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  const tls = { cert: read('tls-cert', certFile), key: read('tls-key', keyFile) };
  // Checked here, so a wrong file or a key of another certificate stops the start with the flags' names.
  try {
    createSecureContext(tls);
  } catch (err) {
    throw new ConfigError(
      `--tls-cert/--tls-key: "${certFile}" and "${keyFile}" are not a PEM certificate and its private key (${(err as Error).message})`,
    );
  }
  return { tls };
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

function int(flag: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`--${flag} must be an integer from ${min} to ${max} (got "${raw}")`);
  }
  return n;
}

function fraction(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > 1) throw new ConfigError(`--${flag} must be a number in (0, 1] (got "${raw}")`);
  return n;
}

function oneOf<T extends string>(flag: string, raw: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`--${flag} must be one of ${allowed.join(', ')} (got "${raw}")`);
  }
  return raw as T;
}

function token(raw: string | undefined, flag = 'token'): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  // Visible ASCII only, so the token fits an HTTP header and a URL query as-is. The value itself is
  // never echoed: error messages and logs must not carry the secret.
  if (!/^[\x21-\x7e]+$/.test(raw)) {
    throw new ConfigError(`--${flag} must be printable ASCII without spaces (got a value that is not)`);
  }
  return raw;
}

/**
 * `stun:host[:port]`, `turn:host[:port][?transport=udp|tcp]`, and the same with `user:password@` after the
 * scheme for TURN credentials (an extension of the URI syntax, so one flag can carry them).
 */
export function iceServers(raw: string | undefined): IceServerConfig[] {
  if (raw === undefined || raw.trim() === '') return [];
  return raw
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^(stuns?|turns?):(?:([^:@\s]+):([^@\s]+)@)?([^\s@,<>"]+)$/.exec(entry);
      if (!m) {
        // The entry may hold a password: name its position, not its text.
        throw new ConfigError(
          '--ice-server entries must be stun:host[:port] or turn:[user:password@]host[:port][?transport=udp|tcp] (one of them is not)',
        );
      }
      const url = `${m[1]}:${m[4]}`;
      return m[2] === undefined ? { url } : { url, username: decodeURIComponent(m[2]), credential: decodeURIComponent(m[3]!) };
    });
}

function resolution(raw: string | undefined): ServerConfig['resolution'] {
  if (raw === undefined || raw === '') return undefined;
  const m = /^(\d+)x(\d+)$/.exec(raw);
  const width = Number(m?.[1]);
  const height = Number(m?.[2]);
  if (!m || width % 16 !== 0 || height % 16 !== 0 || width < 64 || height < 64 || width > 2048 || height > 2048) {
    throw new ConfigError(`--resolution must be WxH with multiples of 16 from 64 to 2048, e.g. 320x256 (got "${raw}")`);
  }
  return { width, height };
}

function codecs(raw: string): VideoCodec[] {
  const list = raw.split(',').map((c) => c.trim().toUpperCase().replace('H.264', 'H264'));
  if (list.length === 0 || list.some((c) => c !== 'VP8' && c !== 'H264')) {
    throw new ConfigError(`--codecs must list VP8 and/or H264 (got "${raw}")`);
  }
  return [...new Set(list)] as VideoCodec[];
}
