// `sds bench browser`: glass-to-glass latency as the web app measures it. Starts the server in-process,
// opens the web app in headless Chromium with a fake camera playing a clip, presses Start, and reads the
// page's per-frame samples (window.sdsGlassToGlass) next to the server's own per-frame records.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { GlassSample, GlassSummary } from '../client/src/glass-to-glass.js';
import { PACKAGE_ROOT, parseServeConfig } from '../server/config.js';
import { parseBenchArgs } from './bench-args.js';
import { createLogger, startServer } from '../server/server.js';
import { findSourceImage, writePanningClip } from './y4m-clip.js';
import { findChromium } from './chromium-path.js';
import {
  type BrowserRunReport,
  renderBrowserMarkdown,
  type RtpCounters,
  rtpStatsAverages,
  renderBrowserTable,
  type ServerFrame,
  summarizeBrowserRun,
} from './browser-report.js';

// Callbacks given to page.evaluate run in the page; this file compiles without the DOM lib.
declare const document: any;
declare const window: any;

export interface BrowserBenchOptions {
  seconds: number;
  style?: string;
  steps?: number;
  strength?: number;
  consistency?: number;
  /** Measuring starts this long after the first restyled frame (the sender's bandwidth estimate ramps up). */
  warmupSeconds?: number;
  serveArgs?: string[];
  chromium?: string;
  outDir?: string;
  label?: string;
  quiet?: boolean;
}

export class ChromiumMissingError extends Error {}

/**
 * The Chromium flags of docs NOTES-webrtc: loopback ICE, a fake camera (from `clip`, a y4m file, when given; else
 * Chromium's own test pattern), no GPU, nothing online. Tests and the browser bench launch with these.
 */
export function chromiumArgs(clip?: string): string[] {
  return [
    '--no-sandbox',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    ...(clip ? [`--use-file-for-fake-video-capture=${clip}`] : []),
    '--allow-loopback-in-peer-connection',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
  ];
}

interface PageGlassLog {
  samples: GlassSample[];
  summary: GlassSummary;
  unsupported: string | undefined;
}

export async function runBrowserBench(options: BrowserBenchOptions): Promise<BrowserRunReport> {
  const found = options.chromium !== undefined ? { path: options.chromium } : findChromium();
  if ('missing' in found) throw new ChromiumMissingError(`${found.missing} (or pass --chromium PATH) to run the browser benchmark.`);
  const executablePath = found.path;
  if (!existsSync(executablePath)) {
    throw new ChromiumMissingError(
      `Chromium not found at ${executablePath}: install Debian's chromium package (or pass --chromium PATH) to run the browser benchmark.`,
    );
  }
  let playwright: typeof import('playwright-core');
  try {
    playwright = await import('playwright-core');
  } catch {
    throw new ChromiumMissingError(
      'playwright-core is not installed (a dev dependency): run `npm install` with dev dependencies to run the browser benchmark.',
    );
  }
  const log = (line: string): void => {
    if (!options.quiet) process.stderr.write(`${line}\n`);
  };
  const warmupSeconds = options.warmupSeconds ?? 3;
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'sds-bench-browser-'));
  const clip = path.join(workDir, 'camera.y4m');
  const clipReady = writePanningClip(clip, { source: findSourceImage(PACKAGE_ROOT), frames: 90, fps: 30 });

  const base = parseServeConfig(options.serveArgs ?? []);
  const config = { ...base, host: '127.0.0.1', port: 0, logLevel: process.env.LOG_LEVEL ?? 'warn' };
  const server = await startServer(config, createLogger(config.logLevel));
  const serverFrames = new Map<number, ServerFrame>();
  server.sessions.frameObservers.add((_sessionId, frame, outMs) => {
    if (!serverFrames.has(frame.rtpTimestamp)) serverFrames.set(frame.rtpTimestamp, { arrivalMs: frame.arrivalMs, outMs });
  });
  let browser: Awaited<ReturnType<typeof playwright.chromium.launch>> | undefined;
  try {
    await clipReady;
    browser = await playwright.chromium.launch({ executablePath, headless: true, args: chromiumArgs(clip) });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${server.url}/?glass-log`);
    await page.waitForFunction(() => document.getElementById('model-name').textContent !== '', undefined, { timeout: 15_000 });
    if (options.style !== undefined) await page.selectOption('#style', options.style);
    if (options.steps !== undefined) await page.selectOption('#steps', String(options.steps));
    for (const [id, value] of [
      ['strength', options.strength],
      ['consistency', options.consistency],
    ] as const) {
      if (value === undefined) continue;
      await page.$eval(
        `#${id}`,
        (el: any, v: number) => {
          el.value = String(v);
          el.dispatchEvent(new Event('input', { bubbles: true }));
        },
        value,
      );
    }
    await page.click('#start');
    await page
      .waitForFunction(() => (window.sdsGlassToGlass?.samples.length ?? 0) > 0, undefined, { timeout: 30_000 })
      .catch(async () => {
        const notice = await page.textContent('#notice-title').catch(() => '');
        const why = await page.evaluate(() => window.sdsGlassToGlass?.unsupported()).catch(() => undefined);
        throw new Error(
          `no restyled frame was matched within 30 s (page: “${notice}”${why ? `; ${why}` : ''}${pageErrors.length ? `; errors: ${pageErrors.join('; ')}` : ''})`,
        );
      });
    log(`first restyled frame shown; warming up ${warmupSeconds} s, then measuring ${options.seconds} s`);
    await page.waitForTimeout(warmupSeconds * 1000);

    const mark = (): Promise<{ now: number; displayed: number; matched: number; samples: number; rtp: RtpCounters }> =>
      page.evaluate(async () => {
        const g = window.sdsGlassToGlass;
        const rtp = await g.rtpCounters();
        const s = g.summary();
        return { now: performance.now(), displayed: s.displayed, matched: s.matched, samples: g.samples.length, rtp };
      });
    const startedAt = new Date().toISOString();
    const start = await mark();
    const framesInAtStart = server.sessions.all()[0]?.stats().framesIn;
    for (let t = 0; t < options.seconds; t++) {
      await page.waitForTimeout(1000);
      if (!options.quiet) {
        const overlay = await page.textContent('[data-stat="glass"]');
        process.stderr.write(`\r${t + 1}/${options.seconds} s  glass-to-glass p50/p95 ${overlay}   `);
      }
    }
    if (!options.quiet) process.stderr.write('\n');
    const end = await mark();
    const session = server.sessions.all()[0];
    const framesIn = session?.stats().framesIn;
    const overlay = (await page.textContent('[data-stat="glass"]')) ?? '';
    const logged = (await page.evaluate((from: number) => {
      const g = window.sdsGlassToGlass;
      return { samples: g.samples.slice(from), summary: g.summary(), unsupported: g.unsupported() };
    }, start.samples)) as PageGlassLog;
    if (logged.unsupported) throw new Error(`the page cannot measure glass-to-glass: ${logged.unsupported}`);
    if (pageErrors.length > 0) throw new Error(`the page threw: ${pageErrors.join('; ')}`);
    const windowSeconds = (end.now - start.now) / 1000;
    const info = server.restyler.info;
    const defaults = server.sessions.defaultParams();
    const params = session?.engine.currentParams ?? { ...defaults, ...options };
    const chromium = `Chromium ${browser.version()}`;
    const report = summarizeBrowserRun(
      {
        label: options.label ?? `web app in headless ${chromium}`,
        seconds: options.seconds,
        camera: '640×480@30 y4m',
        chromium,
        model: path.basename(config.modelDir),
        provider: info.provider,
        modelWidth: (config.resolution ?? info).width,
        modelHeight: (config.resolution ?? info).height,
        style: params.style,
        steps: params.steps,
        consistency: params.consistency,
        budgetMs: config.budgetMs,
        machine: `${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.availableParallelism()} threads, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
      },
      logged.samples,
      serverFrames,
      {
        startedAt,
        displayedFrames: end.displayed - start.displayed,
        matchedFrames: end.matched - start.matched,
        windowSeconds,
        inputFps: framesIn !== undefined && framesInAtStart !== undefined ? (framesIn - framesInAtStart) / windowSeconds : NaN,
        overlay,
        rtpStats: rtpStatsAverages(start.rtp, end.rtp),
      },
    );
    if (options.outDir) {
      mkdirSync(options.outDir, { recursive: true });
      writeFileSync(path.join(options.outDir, 'report.json'), JSON.stringify(report, null, 1));
      writeFileSync(path.join(options.outDir, 'report.md'), renderBrowserMarkdown(report));
    }
    return report;
  } finally {
    await browser?.close().catch(() => {});
    await server.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

export async function runBrowserBenchCli(argv: string[]): Promise<number> {
  const { values, serveArgs } = parseBenchArgs(argv, {
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    style: { type: 'string' },
    steps: { type: 'string' },
    strength: { type: 'string' },
    consistency: { type: 'string' },
    chromium: { type: 'string' },
    out: { type: 'string' },
    label: { type: 'string' },
    help: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(`sds bench browser [--seconds S] [--warmup S] [--style NAME] [--steps N] [--strength X] [--consistency X]
                  [--chromium PATH] [--out DIR] [--label TEXT] [any serve flag]
  glass-to-glass latency measured by the web app in headless Chromium (fake camera), with its parts and the
  server's share; writes report.json and report.md to --out DIR (default bench/out/browser-<time>/).
`);
    return 0;
  }
  const num = (v: unknown): number | undefined => (v === undefined ? undefined : Number(v));
  const outDir = String(values.out ?? path.join(PACKAGE_ROOT, 'bench', 'out', `browser-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  try {
    const report = await runBrowserBench({
      seconds: num(values.seconds) ?? 30,
      warmupSeconds: num(values.warmup),
      style: values.style === undefined ? undefined : String(values.style),
      steps: num(values.steps),
      strength: num(values.strength),
      consistency: num(values.consistency),
      chromium: values.chromium === undefined ? undefined : String(values.chromium),
      label: values.label === undefined ? undefined : String(values.label),
      serveArgs,
      outDir,
    });
    process.stdout.write(renderBrowserTable(report));
    process.stdout.write(`\nreports: ${outDir}/report.{json,md}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ChromiumMissingError) {
      process.stderr.write(`skipped: ${err.message}\n`);
      return 0;
    }
    throw err;
  }
}
