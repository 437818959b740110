// `sds bench soak`: run N loopback sessions (and optional WHEP viewers) against an in-process server for a
// long time, sample the process every few seconds (RSS, heap, active handles, model workers, live native
// resources, server latency p50/p95 per interval), then close every session and check that nothing leaked.
// Writes soak.json + soak.md and fails (exit 1) on growth beyond the stated bounds.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { nowMs } from '../frame/clock.js';
import { PACKAGE_ROOT } from '../server/config.js';
import { loopbackServeConfig, parseBenchArgs, type BenchOptionSpec } from './bench-args.js';
import { createLogger, startServer } from '../server/server.js';
import { liveResources } from '../stream/resource-counters.js';
import type { SoakClientInput, SoakClientMessage } from './soak-client-worker.js';

export interface SoakBounds {
  /** Fail when RSS after warm-up grows by more than this many MB ... */
  maxRssGrowthMb: number;
  /** ... or by more than this percentage. */
  maxRssGrowthPct: number;
  /** Fail when the latency p95 at the end exceeds the start by this many ms AND by `maxP95DriftRatio`. */
  maxP95DriftMs: number;
  maxP95DriftRatio: number;
  /** Active handles (process.getActiveResourcesInfo) allowed above the pre-session count once all closed. */
  maxHandleGrowth: number;
}

export const DEFAULT_SOAK_BOUNDS: SoakBounds = {
  maxRssGrowthMb: 50,
  maxRssGrowthPct: 20,
  maxP95DriftMs: 20,
  maxP95DriftRatio: 1.5,
  maxHandleGrowth: 10,
};

export interface SoakOptions {
  seconds: number;
  sessions: number;
  viewersPerSession: number;
  intervalS: number;
  /** Samples before this are not judged (caches, JIT, allocator arenas settle). Default: min(60 s, 20% of the run). */
  warmupS?: number;
  fps: number;
  codec: 'VP8' | 'H264';
  width: number;
  height: number;
  serveArgs: string[];
  bounds: SoakBounds;
  outDir?: string;
  quiet?: boolean;
}

export interface SoakSample {
  tS: number;
  rssMb: number;
  heapUsedMb: number;
  activeHandles: number;
  workers: number;
  sessions: number;
  viewers: number;
  liveResources: Record<string, number>;
  /** Restyled frames sent by the server in this interval, and their latency (last packet in → first packet out). */
  framesOut: number;
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
  /** Frames decoded by the publishers, and packets received by the viewers, in this interval. */
  clientFrames: number;
  viewerPackets: number;
}

export interface SoakReport {
  config: Omit<SoakOptions, 'quiet' | 'outDir'> & { warmupS: number; model: string; workers: number };
  startedAt: string;
  durationS: number;
  samples: SoakSample[];
  summary: {
    rssStartMb: number;
    rssEndMb: number;
    rssGrowthMb: number;
    rssGrowthPct: number;
    heapStartMb: number;
    heapEndMb: number;
    p95StartMs: number | null;
    p95EndMs: number | null;
    framesOut: number;
    stalledIntervals: number;
    minWorkers: number;
    handlesBefore: Record<string, number>;
    handlesAfter: Record<string, number>;
    /** Native resources (stream/resource-counters) still live after every session closed: all 0 when nothing leaked. */
    leakedResources: Record<string, number>;
    sessionsAfter: number;
    viewersAfter: number;
  };
  failures: string[];
  ok: boolean;
}

const round1 = (v: number): number => Math.round(v * 10) / 10;
const mb = (bytes: number): number => round1(bytes / 2 ** 20);

function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return round1(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);
}

function median(values: number[]): number {
  return percentile(values, 50) ?? 0;
}

function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

const total = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const warmupS = options.warmupS ?? Math.min(60, options.seconds * 0.2);
  const config = loopbackServeConfig(options.serveArgs, {
    sessions: options.sessions,
    viewers: options.sessions * options.viewersPerSession,
  });
  const log = (line: string): void => {
    if (!options.quiet) process.stderr.write(line + '\n');
  };
  const server = await startServer(config, createLogger(config.logLevel));
  const workersOf = (): number => (server.restyler as { liveWorkers?: number }).liveWorkers ?? server.restyler.info.workers;
  let latencies: number[] = [];
  const observer = (_id: string, frame: { arrivalMs: number }, sentMs: number): void => {
    latencies.push(sentMs - frame.arrivalMs);
  };
  server.sessions.frameObservers.add(observer);
  const handlesBefore = handleCounts();
  const startedAt = new Date().toISOString();
  const samples: SoakSample[] = [];
  const failures: string[] = [];
  let clientFrames = 0;
  let viewerPackets = 0;
  let lastClientFrames = 0;
  let lastViewerPackets = 0;
  const input: SoakClientInput = {
    baseUrl: server.url,
    codec: options.codec,
    fps: options.fps,
    width: options.width,
    height: options.height,
    clipFrames: Math.min(90, options.fps * 3),
    sessions: options.sessions,
    viewersPerSession: options.viewersPerSession,
    reportMs: Math.max(250, (options.intervalS * 1000) / 2),
  };
  const worker = new Worker(new URL('./soak-client-worker.js', import.meta.url), { workerData: input });
  let workerError: Error | undefined;
  let connected = 0;
  const done = new Promise<void>((resolve) => {
    worker.on('error', (e) => {
      workerError = e;
      resolve();
    });
    worker.on('exit', () => resolve());
    worker.on('message', (m: SoakClientMessage) => {
      if (m.type === 'connected') connected++;
      else if (m.type === 'counts') ({ outputFrames: clientFrames, viewerPackets } = m);
      else if (m.type === 'error') {
        workerError = new Error(`soak client failed: ${m.message}`);
        resolve();
      } else if (m.type === 'done') resolve();
    });
  });
  const startMs = nowMs();
  try {
    // Whole intervals only (the run is rounded down to them), so every sample covers the same span of time.
    const count = Math.max(1, Math.floor(options.seconds / options.intervalS));
    for (let k = 1; k <= count && !workerError; k++) {
      await sleep(Math.max(0, startMs + k * options.intervalS * 1000 - nowMs()));
      const mem = process.memoryUsage();
      const interval = latencies;
      latencies = [];
      const sample: SoakSample = {
        tS: round1((nowMs() - startMs) / 1000),
        rssMb: mb(mem.rss),
        heapUsedMb: mb(mem.heapUsed),
        activeHandles: process.getActiveResourcesInfo().length,
        workers: workersOf(),
        sessions: server.sessions.size,
        viewers: server.sessions.viewerCount,
        liveResources: { ...liveResources() },
        framesOut: interval.length,
        latencyP50Ms: percentile(interval, 50),
        latencyP95Ms: percentile(interval, 95),
        clientFrames: clientFrames - lastClientFrames,
        viewerPackets: viewerPackets - lastViewerPackets,
      };
      lastClientFrames = clientFrames;
      lastViewerPackets = viewerPackets;
      samples.push(sample);
      log(
        `t=${sample.tS}s rss ${sample.rssMb} MB heap ${sample.heapUsedMb} MB handles ${sample.activeHandles} workers ${sample.workers} ` +
          `sessions ${sample.sessions} viewers ${sample.viewers} frames ${sample.framesOut} p50 ${sample.latencyP50Ms} p95 ${sample.latencyP95Ms} ms`,
      );
    }
  } finally {
    worker.postMessage({ type: 'stop' });
    await Promise.race([done, sleep(20_000)]);
    await worker.terminate();
  }
  if (workerError) failures.push(workerError.message);
  if (connected < options.sessions) failures.push(`only ${connected} of ${options.sessions} sessions connected`);
  // Every session was DELETEd by its client: the server must hold nothing after a short grace.
  const closeBy = nowMs() + 15_000;
  while ((server.sessions.size > 0 || server.sessions.viewerCount > 0) && nowMs() < closeBy) await sleep(100);
  await sleep(500);
  const leaked = Object.fromEntries(Object.entries(liveResources()).filter(([, n]) => n !== 0));
  const handlesAfter = handleCounts();
  const sessionsAfter = server.sessions.size;
  const viewersAfter = server.sessions.viewerCount;
  const durationS = round1((nowMs() - startMs) / 1000);
  server.sessions.frameObservers.delete(observer);
  await server.close();

  const judged = samples.filter((s) => s.tS >= warmupS);
  // Start and end are the medians over the first and last fifth of the judged samples (at least 3 each), so
  // one noisy interval on a shared machine does not decide the verdict.
  const window = Math.max(3, Math.floor(judged.length / 5));
  const head = judged.slice(0, window);
  const tail = judged.slice(-window);
  const rssStartMb = median(head.map((s) => s.rssMb));
  const rssEndMb = median(tail.map((s) => s.rssMb));
  const p95s = (list: SoakSample[]): number[] => list.flatMap((s) => (s.latencyP95Ms === null ? [] : [s.latencyP95Ms]));
  const p95StartMs = head.length ? percentile(p95s(head), 50) : null;
  const p95EndMs = tail.length ? percentile(p95s(tail), 50) : null;
  const stalledIntervals = judged.filter((s) => s.framesOut === 0).length;
  const minWorkers = Math.min(...samples.map((s) => s.workers));
  const summary: SoakReport['summary'] = {
    rssStartMb,
    rssEndMb,
    rssGrowthMb: round1(rssEndMb - rssStartMb),
    rssGrowthPct: rssStartMb > 0 ? round1(((rssEndMb - rssStartMb) / rssStartMb) * 100) : 0,
    heapStartMb: median(head.map((s) => s.heapUsedMb)),
    heapEndMb: median(tail.map((s) => s.heapUsedMb)),
    p95StartMs,
    p95EndMs,
    framesOut: samples.reduce((n, s) => n + s.framesOut, 0),
    stalledIntervals,
    minWorkers,
    handlesBefore,
    handlesAfter,
    leakedResources: leaked,
    sessionsAfter,
    viewersAfter,
  };
  if (judged.length === 0) failures.push(`no samples after the ${warmupS} s warm-up: run longer than the warm-up`);
  failures.push(...judgeSoak(summary, options.bounds, server.restyler.info.workers));
  const { quiet: _q, outDir: _o, ...rest } = options;
  const report: SoakReport = {
    config: { ...rest, warmupS, model: path.basename(config.modelDir), workers: server.restyler.info.workers },
    startedAt,
    durationS,
    samples,
    summary,
    failures,
    ok: failures.length === 0,
  };
  if (options.outDir) {
    mkdirSync(options.outDir, { recursive: true });
    writeFileSync(path.join(options.outDir, 'soak.json'), JSON.stringify(report, null, 1));
    writeFileSync(path.join(options.outDir, 'soak.md'), renderSoakMarkdown(report));
  }
  return report;
}

/** What in a soak's summary breaks the bounds: one sentence per failure, none when it passed. */
export function judgeSoak(summary: SoakReport['summary'], b: SoakBounds, workers: number): string[] {
  const failures: string[] = [];
  const { p95StartMs, p95EndMs } = summary;
  if (summary.rssGrowthMb > b.maxRssGrowthMb)
    failures.push(`RSS grew by ${summary.rssGrowthMb} MB after warm-up (bound ${b.maxRssGrowthMb} MB)`);
  if (summary.rssGrowthPct > b.maxRssGrowthPct)
    failures.push(`RSS grew by ${summary.rssGrowthPct}% after warm-up (bound ${b.maxRssGrowthPct}%)`);
  if (p95StartMs !== null && p95EndMs !== null && p95EndMs - p95StartMs > b.maxP95DriftMs && p95EndMs > p95StartMs * b.maxP95DriftRatio) {
    failures.push(`latency p95 drifted from ${p95StartMs} ms to ${p95EndMs} ms (bound +${b.maxP95DriftMs} ms and ×${b.maxP95DriftRatio})`);
  }
  if (summary.stalledIntervals > 0) failures.push(`${summary.stalledIntervals} sampling interval(s) after warm-up sent no restyled frame`);
  if (summary.minWorkers < workers) failures.push(`a model worker was down during the run (min ${summary.minWorkers} of ${workers})`);
  if (Object.keys(summary.leakedResources).length > 0)
    failures.push(`resources still live after every session closed: ${JSON.stringify(summary.leakedResources)}`);
  if (summary.sessionsAfter > 0 || summary.viewersAfter > 0) {
    failures.push(`${summary.sessionsAfter} session(s) and ${summary.viewersAfter} viewer(s) still open after the clients hung up`);
  }
  const handleGrowth = total(summary.handlesAfter) - total(summary.handlesBefore);
  if (handleGrowth > b.maxHandleGrowth) {
    failures.push(
      `${handleGrowth} more active handles after the run than before it (bound ${b.maxHandleGrowth}): ${JSON.stringify(summary.handlesAfter)}`,
    );
  }
  return failures;
}

export function renderSoakMarkdown(r: SoakReport): string {
  const s = r.summary;
  const c = r.config;
  const lines = [
    `# Soak: ${c.sessions} session(s) × ${c.viewersPerSession} viewer(s), ${c.codec} ${c.width}×${c.height}@${c.fps}, ${r.durationS} s`,
    '',
    `Started ${r.startedAt}; model ${c.model}, ${c.workers} worker(s); samples every ${c.intervalS} s; warm-up ${c.warmupS} s not judged.`,
    '',
    `**Verdict: ${r.ok ? 'PASS' : 'FAIL'}**${r.failures.length ? '\n\n' + r.failures.map((f) => `- ${f}`).join('\n') : ''}`,
    '',
    '| | after warm-up | end | bound |',
    '|---|---|---|---|',
    `| RSS (MB) | ${s.rssStartMb} | ${s.rssEndMb} (${s.rssGrowthMb >= 0 ? '+' : ''}${s.rssGrowthMb} MB, ${s.rssGrowthPct}%) | +${c.bounds.maxRssGrowthMb} MB, +${c.bounds.maxRssGrowthPct}% |`,
    `| heap used (MB) | ${s.heapStartMb} | ${s.heapEndMb} | — |`,
    `| latency p95 (ms) | ${s.p95StartMs ?? '—'} | ${s.p95EndMs ?? '—'} | +${c.bounds.maxP95DriftMs} ms and ×${c.bounds.maxP95DriftRatio} |`,
    `| active handles | ${total(s.handlesBefore)} before sessions | ${total(s.handlesAfter)} after close | +${c.bounds.maxHandleGrowth} |`,
    '',
    `Restyled frames sent: ${s.framesOut}; intervals without output after warm-up: ${s.stalledIntervals}; fewest live model workers: ${s.minWorkers}.`,
    `After close: ${s.sessionsAfter} sessions, ${s.viewersAfter} viewers, leaked resources ${JSON.stringify(s.leakedResources)}.`,
    '',
    '| t (s) | RSS MB | heap MB | handles | workers | sessions | viewers | frames out | p50 ms | p95 ms | client frames | viewer packets |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...r.samples.map(
      (x) =>
        `| ${x.tS} | ${x.rssMb} | ${x.heapUsedMb} | ${x.activeHandles} | ${x.workers} | ${x.sessions} | ${x.viewers} | ${x.framesOut} | ${x.latencyP50Ms ?? '—'} | ${x.latencyP95Ms ?? '—'} | ${x.clientFrames} | ${x.viewerPackets} |`,
    ),
    '',
  ];
  return lines.join('\n');
}

export async function runSoakCli(argv: string[]): Promise<number> {
  const own = {
    minutes: { type: 'string' },
    seconds: { type: 'string' },
    sessions: { type: 'string' },
    viewers: { type: 'string' },
    interval: { type: 'string' },
    warmup: { type: 'string' },
    fps: { type: 'string' },
    codec: { type: 'string' },
    size: { type: 'string' },
    out: { type: 'string' },
    'max-rss-growth-mb': { type: 'string' },
    'max-rss-growth-pct': { type: 'string' },
    'max-p95-drift-ms': { type: 'string' },
    'max-p95-drift-ratio': { type: 'string' },
    'max-handle-growth': { type: 'string' },
  } satisfies BenchOptionSpec;
  const { values, serveArgs } = parseBenchArgs(argv, own);
  const num = (v: unknown, fallback: number): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`expected a non-negative number, got "${String(v)}"`);
    return n;
  };
  const size = /^(\d+)x(\d+)$/.exec(String(values.size ?? '640x480'));
  if (!size) throw new Error('--size must be WxH, e.g. 640x480');
  const seconds = values.seconds !== undefined ? num(values.seconds, 0) : num(values.minutes, 30) * 60;
  const outDir = String(values.out ?? path.join(PACKAGE_ROOT, 'bench', 'out', `soak-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  const report = await runSoak({
    seconds,
    sessions: Math.max(1, Math.floor(num(values.sessions, 3))),
    viewersPerSession: Math.floor(num(values.viewers, 0)),
    intervalS: Math.max(0.5, num(values.interval, 5)),
    ...(values.warmup !== undefined ? { warmupS: num(values.warmup, 0) } : {}),
    fps: num(values.fps, 30),
    codec: String(values.codec ?? 'VP8').toUpperCase() === 'H264' ? 'H264' : 'VP8',
    width: Number(size[1]),
    height: Number(size[2]),
    serveArgs,
    bounds: {
      maxRssGrowthMb: num(values['max-rss-growth-mb'], DEFAULT_SOAK_BOUNDS.maxRssGrowthMb),
      maxRssGrowthPct: num(values['max-rss-growth-pct'], DEFAULT_SOAK_BOUNDS.maxRssGrowthPct),
      maxP95DriftMs: num(values['max-p95-drift-ms'], DEFAULT_SOAK_BOUNDS.maxP95DriftMs),
      maxP95DriftRatio: num(values['max-p95-drift-ratio'], DEFAULT_SOAK_BOUNDS.maxP95DriftRatio),
      maxHandleGrowth: num(values['max-handle-growth'], DEFAULT_SOAK_BOUNDS.maxHandleGrowth),
    },
    outDir,
  });
  process.stdout.write(renderSoakMarkdown(report).split('\n| t (s)')[0]!);
  process.stdout.write(`\nreports: ${outDir}/soak.{json,md}\n`);
  return report.ok ? 0 : 1;
}
