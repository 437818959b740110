// `sds bench e2e`: the server and real werift publishers on loopback. Publishers (in a worker thread)
// send a pre-encoded clip at a fixed rate; the server's own per-frame stage records and the publishers'
// receive times are matched by RTP timestamp and summarized (see e2e-report.ts).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { nowMs } from '../frame/clock.js';
import type { FramePath, StageTiming } from '../frame/video-frame.js';
import { PACKAGE_ROOT } from '../server/config.js';
import { loopbackServeConfig, parseBenchArgs } from './bench-args.js';
import { createLogger, startServer } from '../server/server.js';
import type { ClientWorkerInput, ClientWorkerMessage } from './e2e-client-worker.js';
import { type FrameRecord, type RunConfig, type RunReport, renderComparison, renderHtml, renderMarkdown, summarize } from './e2e-report.js';

export interface E2eBenchOptions {
  seconds: number;
  fps: number;
  codec: 'VP8' | 'H264';
  sessions: number;
  joinAfterS: number;
  width: number;
  height: number;
  steps?: number;
  strength?: number;
  consistency?: number;
  style?: string;
  serveArgs: string[];
  outDir?: string;
  label?: string;
  quiet?: boolean;
}

export async function runE2eBench(options: E2eBenchOptions): Promise<RunReport> {
  const config = loopbackServeConfig(options.serveArgs, { sessions: options.sessions });
  const server = await startServer(config, createLogger(config.logLevel));
  const serverFrames = new Map<string, Map<number, { arrivalMs: number; outMs: number; stages: StageTiming[]; path?: FramePath }>>();
  server.sessions.frameObservers.add((sessionId, frame, outMs) => {
    let own = serverFrames.get(sessionId);
    if (!own) serverFrames.set(sessionId, (own = new Map()));
    own.set(frame.rtpTimestamp, { arrivalMs: frame.arrivalMs, outMs, stages: frame.stages, path: frame.path });
  });
  const query = new URLSearchParams();
  for (const key of ['steps', 'strength', 'consistency', 'style'] as const) {
    if (options[key] !== undefined) query.set(key, String(options[key]));
  }
  const whipUrl = `${server.url}/whip${query.size ? `?${query}` : ''}`;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const input: ClientWorkerInput = {
    whipUrl,
    codec: options.codec,
    fps: options.fps,
    width: options.width,
    height: options.height,
    clipFrames: Math.min(150, options.fps * 5),
    sessions: options.sessions,
    joinAfterS: options.joinAfterS,
    seconds: options.seconds,
  };
  const outputs = new Map<number, Map<number, number>>();
  const sent = new Map<number, Array<[number, number]>>();
  const sessionIds = new Map<number, string>();
  const connectedMs = new Map<number, number>();
  const firstFrameMs = new Map<number, number>();
  let startMs = 0;
  let cpuStart = process.cpuUsage();
  const worker = new Worker(new URL('./e2e-client-worker.js', import.meta.url), { workerData: input });
  try {
    await new Promise<void>((resolve, reject) => {
      worker.on('error', reject);
      worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`client worker exited with ${code}`))));
      worker.on('message', (m: ClientWorkerMessage) => {
        switch (m.type) {
          case 'ready':
            startMs = nowMs();
            cpuStart = process.cpuUsage();
            loop.enable();
            break;
          case 'connected':
            sessionIds.set(m.session, m.sessionId);
            connectedMs.set(m.session, m.startedMs);
            break;
          case 'output': {
            let own = outputs.get(m.session);
            if (!own) outputs.set(m.session, (own = new Map()));
            if (!own.has(m.rtpTimestamp)) own.set(m.rtpTimestamp, m.receivedMs);
            if (!firstFrameMs.has(m.session)) firstFrameMs.set(m.session, m.receivedMs);
            break;
          }
          case 'sent':
            sent.set(m.session, m.frames);
            break;
          case 'progress':
            if (!options.quiet)
              progressBar(
                m.elapsedS,
                options.seconds,
                server.sessions.all().reduce((a, s) => a + s.engine.stats().outputFps, 0),
              );
            break;
          case 'error':
            reject(new Error(`benchmark client failed: ${m.message}`));
            break;
          case 'done':
            void worker.terminate();
            resolve();
            break;
        }
      });
    });
  } finally {
    loop.disable();
    if (!options.quiet) process.stderr.write('\n');
  }
  const wallMs = nowMs() - startMs;
  const cpu = process.cpuUsage(cpuStart);
  await server.close();

  const records: FrameRecord[] = [];
  for (const [session, frames] of sent) {
    const server = serverFrames.get(sessionIds.get(session) ?? '') ?? new Map();
    const outs = outputs.get(session) ?? new Map<number, number>();
    for (const [rtpTimestamp, sentByClientMs] of frames) {
      const s = server.get(rtpTimestamp);
      records.push({
        session,
        rtpTimestamp,
        sentByClientMs,
        arrivalMs: s?.arrivalMs,
        firstPacketOutMs: s?.outMs,
        stages: s?.stages,
        path: s?.path,
        receivedByClientMs: outs.get(rtpTimestamp),
      });
    }
  }
  const model = path.basename(config.modelDir);
  const runConfig: RunConfig = {
    label: options.label ?? `${options.sessions}x ${options.codec} ${options.width}x${options.height}@${options.fps}`,
    seconds: options.seconds,
    fps: options.fps,
    codec: options.codec,
    sessions: options.sessions,
    inputWidth: options.width,
    inputHeight: options.height,
    modelWidth: (config.resolution ?? server.restyler.info).width,
    modelHeight: (config.resolution ?? server.restyler.info).height,
    steps: options.steps ?? server.restyler.info.defaults.steps,
    consistency: options.consistency ?? server.sessions.defaultParams().consistency,
    provider: server.restyler.info.provider,
    model,
    budgetMs: config.budgetMs,
    machine: `${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.availableParallelism()} threads, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
  };
  const report = summarize(runConfig, records, {
    startMs,
    firstFrameMs,
    connectedMs,
    eventLoopDelayMs: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
    cpuPercent: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
  });
  if (options.outDir) {
    mkdirSync(options.outDir, { recursive: true });
    writeFileSync(path.join(options.outDir, 'report.json'), JSON.stringify(report, null, 1));
    writeFileSync(path.join(options.outDir, 'report.md'), renderMarkdown(report));
    writeFileSync(path.join(options.outDir, 'report.html'), renderHtml(report));
  }
  return report;
}

function progressBar(elapsed: number, total: number, fps: number): void {
  const width = 30;
  const done = Math.min(width, Math.round((elapsed / total) * width));
  process.stderr.write(
    `\r[${'#'.repeat(done)}${' '.repeat(width - done)}] ${elapsed.toFixed(1)}/${total} s  output ${fps.toFixed(1)} fps   `,
  );
}

export async function runE2eBenchCli(argv: string[]): Promise<number> {
  const { values, serveArgs } = parseBenchArgs(argv, {
    seconds: { type: 'string' },
    fps: { type: 'string' },
    codec: { type: 'string' },
    sessions: { type: 'string' },
    'join-after': { type: 'string' },
    size: { type: 'string' },
    steps: { type: 'string' },
    strength: { type: 'string' },
    consistency: { type: 'string' },
    style: { type: 'string' },
    out: { type: 'string' },
    label: { type: 'string' },
    compare: { type: 'string', multiple: true },
  });
  if (values.compare) {
    const files = values.compare as string[];
    if (files.length !== 2) throw new Error('--compare takes two report.json files: --compare A.json --compare B.json');
    const [a, b] = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as RunReport);
    process.stdout.write(renderComparison(a!, b!));
    return 0;
  }
  const size = /^(\d+)x(\d+)$/.exec(String(values.size ?? '640x480'));
  if (!size) throw new Error('--size must be WxH, e.g. 640x480');
  const num = (v: unknown): number | undefined => (v === undefined ? undefined : Number(v));
  const outDir = String(values.out ?? path.join(PACKAGE_ROOT, 'bench', 'out', new Date().toISOString().replace(/[:.]/g, '-')));
  const report = await runE2eBench({
    seconds: num(values.seconds) ?? 60,
    fps: num(values.fps) ?? 30,
    codec: String(values.codec ?? 'VP8').toUpperCase() === 'H264' ? 'H264' : 'VP8',
    sessions: num(values.sessions) ?? 1,
    joinAfterS: num(values['join-after']) ?? 0,
    width: Number(size[1]),
    height: Number(size[2]),
    steps: num(values.steps),
    strength: num(values.strength),
    consistency: num(values.consistency),
    style: values.style === undefined ? undefined : String(values.style),
    serveArgs,
    outDir,
    label: values.label === undefined ? undefined : String(values.label),
  });
  process.stdout.write(renderMarkdown(report));
  process.stdout.write(`\nreports: ${outDir}/report.{json,md,html}\n`);
  return 0;
}
