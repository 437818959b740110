// Turns the browser benchmark's samples into its report: glass-to-glass percentiles measured by the web
// app in Chromium, their parts, the server's share (frames matched by RTP timestamp), and renderings
// (terminal table, Markdown). Pure functions.
import type { GlassSample } from '../client/src/glass-to-glass.js';
import { type Distribution, distribution } from './e2e-report.js';

export interface BrowserRunConfig {
  label: string;
  seconds: number;
  camera: string;
  chromium: string;
  model: string;
  provider: string;
  modelWidth: number;
  modelHeight: number;
  style: string;
  steps: number;
  consistency: number;
  budgetMs: number;
  machine: string;
}

/** The server's own record of a frame: last packet in → first restyled packet out (epoch ms). */
export interface ServerFrame {
  arrivalMs: number;
  outMs: number;
}

export interface BrowserRunReport {
  config: BrowserRunConfig;
  startedAt: string;
  /** Camera capture → restyled frame's expected display time, in the page. */
  glassToGlassMs: Distribution;
  /** capture → encoded frame sent, sent → last packet of the restyled frame received, received → displayed. */
  captureToSentMs: Distribution;
  sentToReceiveMs: Distribution;
  receiveToDisplayMs: Distribution;
  /** The server's latency for the frames the page showed. */
  serverLatencyMs: Distribution;
  /** Per frame: server latency ÷ glass-to-glass. */
  serverShare: Distribution;
  /** The rest of sent → received once the server's part is taken out: both network legs and pacing. */
  transportMs: Distribution;
  /** Frames shown in the measured window, and the fraction the page matched to a sent frame by RTP timestamp. */
  displayedFrames: number;
  matchedRatio: number;
  /** Of matched frames, the fraction the server's records also had (its share is computed over these). */
  serverMatchedRatio: number;
  /** Of samples, the fraction timed from the camera capture (else from the encoder output). */
  fromCaptureRatio: number;
  outputFps: number;
  inputFps: number;
  /** The stats overlay's glass-to-glass text at the end of the run, as a person sees it. */
  overlay: string;
  /** Averages per frame over the window from getStats (outbound-rtp encode; inbound-rtp jitter buffer, decode). */
  rtpStats: RtpStatsAverages;
  /** Every matched frame: [RTP timestamp, glass-to-glass ms, server latency ms or null when the server has no record]. */
  frames: Array<[number, number, number | null]>;
}

export function summarizeBrowserRun(
  config: BrowserRunConfig,
  samples: GlassSample[],
  serverFrames: ReadonlyMap<number, ServerFrame>,
  extra: {
    startedAt: string;
    displayedFrames: number;
    matchedFrames: number;
    windowSeconds: number;
    inputFps: number;
    overlay: string;
    rtpStats?: RtpStatsAverages;
  },
): BrowserRunReport {
  const glass = samples.map((s) => s.displayMs - s.captureMs);
  const server: number[] = [];
  const share: number[] = [];
  const transport: number[] = [];
  const frames: BrowserRunReport['frames'] = [];
  for (const s of samples) {
    const f = serverFrames.get(s.rtpTimestamp);
    frames.push([s.rtpTimestamp, round2(s.displayMs - s.captureMs), f ? round2(f.outMs - f.arrivalMs) : null]);
    if (!f) continue;
    const serverMs = f.outMs - f.arrivalMs;
    server.push(serverMs);
    share.push(serverMs / (s.displayMs - s.captureMs));
    if (Number.isFinite(s.receiveMs)) transport.push(s.receiveMs - s.sentMs - serverMs);
  }
  const finite = (values: number[]): number[] => values.filter((v) => Number.isFinite(v));
  return {
    config,
    startedAt: extra.startedAt,
    glassToGlassMs: distribution(glass),
    captureToSentMs: distribution(samples.filter((s) => s.fromCapture).map((s) => s.sentMs - s.captureMs)),
    sentToReceiveMs: distribution(finite(samples.map((s) => s.receiveMs - s.sentMs))),
    receiveToDisplayMs: distribution(finite(samples.map((s) => s.displayMs - s.receiveMs))),
    serverLatencyMs: distribution(server),
    serverShare: distribution(share),
    transportMs: distribution(transport),
    displayedFrames: extra.displayedFrames,
    matchedRatio: extra.displayedFrames > 0 ? extra.matchedFrames / extra.displayedFrames : 0,
    serverMatchedRatio: samples.length > 0 ? server.length / samples.length : 0,
    fromCaptureRatio: samples.length > 0 ? samples.filter((s) => s.fromCapture).length / samples.length : 0,
    outputFps: extra.windowSeconds > 0 ? extra.displayedFrames / extra.windowSeconds : 0,
    inputFps: extra.inputFps,
    overlay: extra.overlay,
    rtpStats: extra.rtpStats ?? rtpStatsAverages(undefined, undefined),
    frames,
  };
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

function f1(v: number): string {
  return Number.isFinite(v) ? v.toFixed(1) : '–';
}

function pct(v: number): string {
  return Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '–';
}

function rows(r: BrowserRunReport): Array<[string, string]> {
  const d = (x: Distribution): string => `${f1(x.p50)} / ${f1(x.p95)} / ${f1(x.p99)} ms`;
  return [
    ['glass-to-glass p50 / p95 / p99 (capture → on screen)', d(r.glassToGlassMs)],
    ['  capture → encoded frame sent', d(r.captureToSentMs)],
    ['    sender average encode time (getStats)', `${f1(r.rtpStats.encodeMs)} ms`],
    ['  sent → restyled frame received (network + server)', d(r.sentToReceiveMs)],
    ['    of which server (last packet in → first out)', d(r.serverLatencyMs)],
    ['    of which the rest (both network legs, pacing)', d(r.transportMs)],
    ['  received → expected display (jitter buffer, decode, compositor)', d(r.receiveToDisplayMs)],
    [
      '    receiver averages: jitter buffer / its target / decode',
      `${f1(r.rtpStats.jitterBufferMs)} / ${f1(r.rtpStats.jitterBufferTargetMs)} / ${f1(r.rtpStats.decodeMs)} ms`,
    ],
    ['server share of glass-to-glass p50 / p95', `${pct(r.serverShare.p50)} / ${pct(r.serverShare.p95)}`],
    ['input fps (server) / output fps (shown)', `${f1(r.inputFps)} / ${f1(r.outputFps)}`],
    ['frames shown / matched by RTP timestamp', `${r.displayedFrames} / ${pct(r.matchedRatio)}`],
    ['matched frames the server also recorded', pct(r.serverMatchedRatio)],
    ['timed from camera capture (else from encoder output)', pct(r.fromCaptureRatio)],
    ['stats overlay at the end', r.overlay],
  ];
}

function header(r: BrowserRunReport): string {
  const c = r.config;
  return `${c.camera} fake camera in ${c.chromium} → model ${c.model} at ${c.modelWidth}×${c.modelHeight}, style ${c.style}, ${c.steps} step(s), consistency ${c.consistency}, provider ${c.provider}, budget ${c.budgetMs} ms, ${c.seconds} s`;
}

/** A plain table for the terminal. */
export function renderBrowserTable(r: BrowserRunReport): string {
  const all = rows(r);
  const width = Math.max(...all.map(([k]) => k.length));
  return [`browser benchmark: ${r.config.label}`, header(r), '', ...all.map(([k, v]) => `${k.padEnd(width)}  ${v}`), ''].join('\n');
}

export function renderBrowserMarkdown(r: BrowserRunReport): string {
  return [
    `# Browser benchmark: ${r.config.label}`,
    '',
    `${r.startedAt} · ${r.config.machine}`,
    '',
    header(r),
    '',
    '| metric | value |',
    '|---|---|',
    ...rows(r).map(([k, v]) => `| ${k.trim()} | ${v.replace(/\|/g, '\\|')} |`),
    '',
    "Glass-to-glass is measured by the web app on one clock (the page's): the capture time of each camera frame",
    "(estimated from its RTP timestamp and the preview's capture times), and the expected display time of the",
    'restyled frame with the same RTP timestamp. A fake camera has no sensor or exposure delay, and the time from',
    "the compositor's expected display to light leaving a real screen is not seen.",
    '',
  ].join('\n');
}

type CounterName =
  | 'totalEncodeTime'
  | 'framesEncoded'
  | 'jitterBufferDelay'
  | 'jitterBufferTargetDelay'
  | 'jitterBufferEmittedCount'
  | 'totalDecodeTime'
  | 'framesDecoded';
export type RtpCounters = Partial<Record<CounterName, number>>;
export interface RtpStatsAverages {
  encodeMs: number;
  jitterBufferMs: number;
  jitterBufferTargetMs: number;
  decodeMs: number;
}

/** Window averages (ms per frame) from two readings of cumulative getStats counters (seconds and counts). */
export function rtpStatsAverages(start: RtpCounters | undefined, end: RtpCounters | undefined): RtpStatsAverages {
  const per = (sum: CounterName, count: CounterName): number => {
    const ds = (end?.[sum] ?? NaN) - (start?.[sum] ?? NaN);
    const dc = (end?.[count] ?? NaN) - (start?.[count] ?? NaN);
    return dc > 0 ? (ds / dc) * 1000 : NaN;
  };
  return {
    encodeMs: per('totalEncodeTime', 'framesEncoded'),
    jitterBufferMs: per('jitterBufferDelay', 'jitterBufferEmittedCount'),
    jitterBufferTargetMs: per('jitterBufferTargetDelay', 'jitterBufferEmittedCount'),
    decodeMs: per('totalDecodeTime', 'framesDecoded'),
  };
}
