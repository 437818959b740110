// Turns per-frame records from an end-to-end run into the report: percentiles, per-stage breakdown,
// rates, and renderings (terminal table, Markdown, an HTML page with charts, JSON). Pure functions.
import type { FramePath, StageName, StageTiming } from '../frame/video-frame.js';

/** One input frame as the benchmark saw it. Times are epoch ms (nowMs()). */
export interface FrameRecord {
  session: number;
  rtpTimestamp: number;
  sentByClientMs: number;
  /** Server side, when the frame made it through the engine (undefined = dropped or lost). */
  arrivalMs?: number;
  firstPacketOutMs?: number;
  stages?: StageTiming[];
  /** The engine's choice for it (model at some steps and scale, or reuse). */
  path?: FramePath;
  /** Client side: when the restyled frame was decoded. */
  receivedByClientMs?: number;
}

export interface RunConfig {
  label: string;
  seconds: number;
  fps: number;
  codec: 'VP8' | 'H264';
  sessions: number;
  inputWidth: number;
  inputHeight: number;
  modelWidth: number;
  modelHeight: number;
  steps: number;
  consistency: number;
  provider: string;
  model: string;
  budgetMs: number;
  machine: string;
}

export interface Distribution {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface SessionSummary {
  session: number;
  framesSent: number;
  framesOut: number;
  inputFps: number;
  outputFps: number;
  dropRate: number;
  deadlineMissRate: number;
  timeToFirstFrameMs: number | null;
  latencyMs: Distribution;
}

export interface RunReport {
  config: RunConfig;
  startedAt: string;
  /** Server latency: a frame's last packet in → its first restyled packet out. */
  latencyMs: Distribution;
  /** Client-observed: frame handed to the client's sender → restyled frame decoded by the client. */
  roundTripMs: Distribution;
  stagesMs: Partial<Record<StageName, Distribution>>;
  /** median end-to-end server latency ÷ sum of median stage compute times (excl. mailbox/dispatch). */
  overheadRatio: number;
  inputFps: number;
  outputFps: number;
  dropRate: number;
  deadlineMissRate: number;
  timeToFirstFrameMs: number | null;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  cpuPercent: number;
  sessions: SessionSummary[];
  /** Latency over time: [seconds since start, latency ms] of every matched frame (for the timeline). */
  timeline: Array<[number, number, number]>;
  /**
   * Every frame that came back, in arrival order: when, its latency, the engine's path and each stage's ms (repeated
   * stages summed). What a slow run needs to be told apart: which frames ran at half resolution, which stage grew.
   */
  frames: FrameSummary[];
}

export interface FrameSummary {
  session: number;
  /** Seconds since the run started. */
  atS: number;
  latencyMs: number;
  path?: FramePath;
  stagesMs: Partial<Record<StageName, number>>;
}

export function distribution(values: number[]): Distribution {
  if (values.length === 0) return { count: 0, mean: NaN, p50: NaN, p95: NaN, p99: NaN, max: NaN };
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  return { count: s.length, mean: s.reduce((a, b) => a + b, 0) / s.length, p50: q(50), p95: q(95), p99: q(99), max: s[s.length - 1]! };
}

/** Stages that do work on every restyled frame. Not mailbox/dispatch (waiting and transfer: the overhead
 * the ratio measures) and not reuse (an alternative to the model path, not a part of it). */
const COMPUTE_STAGES: ReadonlySet<StageName> = new Set([
  'depacketize',
  'decode',
  'scale',
  'preprocess',
  'text_encode',
  'flow',
  'warp',
  'vae_encode',
  'denoise',
  'vae_decode',
  'postprocess',
  'encode',
  'packetize',
]);

export function summarize(
  config: RunConfig,
  records: FrameRecord[],
  extra: {
    startMs: number;
    eventLoopDelayMs: RunReport['eventLoopDelayMs'];
    cpuPercent: number;
    firstFrameMs: Map<number, number>;
    connectedMs: Map<number, number>;
  },
): RunReport {
  const matched = records.filter((r) => r.firstPacketOutMs !== undefined && r.arrivalMs !== undefined);
  const latencies = matched.map((r) => r.firstPacketOutMs! - r.arrivalMs!);
  const roundTrips = records.filter((r) => r.receivedByClientMs !== undefined).map((r) => r.receivedByClientMs! - r.sentByClientMs);
  const perStage = new Map<StageName, number[]>();
  const frames: FrameSummary[] = [];
  for (const r of [...matched].sort((a, b) => a.arrivalMs! - b.arrivalMs!)) {
    // Several records of one stage in one frame (e.g. dispatch in and out) add up to that stage's time.
    const sums = new Map<StageName, number>();
    for (const s of r.stages ?? []) {
      if (Number.isFinite(s.endMs)) sums.set(s.name, (sums.get(s.name) ?? 0) + (s.endMs - s.startMs));
    }
    for (const [name, ms] of sums) perStage.set(name, [...(perStage.get(name) ?? []), ms]);
    frames.push({
      session: r.session,
      atS: round((r.arrivalMs! - extra.startMs) / 1000, 3),
      latencyMs: round(r.firstPacketOutMs! - r.arrivalMs!, 2),
      ...(r.path ? { path: r.path } : {}),
      stagesMs: Object.fromEntries([...sums].map(([name, ms]) => [name, round(ms, 2)])),
    });
  }
  const stagesMs: RunReport['stagesMs'] = {};
  for (const [name, values] of perStage) stagesMs[name] = distribution(values);
  const computeMedianSum = [...perStage.entries()]
    .filter(([name]) => COMPUTE_STAGES.has(name))
    .reduce((sum, [name]) => sum + (stagesMs[name]?.p50 ?? 0), 0);
  const latency = distribution(latencies);
  const sessions: SessionSummary[] = [];
  const sessionIds = [...new Set(records.map((r) => r.session))].sort((a, b) => a - b);
  for (const id of sessionIds) {
    const own = records.filter((r) => r.session === id);
    const sent = own.length;
    const outs = own.filter((r) => r.receivedByClientMs !== undefined);
    const lat = own
      .filter((r) => r.firstPacketOutMs !== undefined && r.arrivalMs !== undefined)
      .map((r) => r.firstPacketOutMs! - r.arrivalMs!);
    const span = spanSeconds(own.map((r) => r.sentByClientMs));
    const outSpan = spanSeconds(outs.map((r) => r.receivedByClientMs!));
    const first = extra.firstFrameMs.get(id);
    const connected = extra.connectedMs.get(id);
    sessions.push({
      session: id,
      framesSent: sent,
      framesOut: outs.length,
      inputFps: span > 0 ? (sent - 1) / span : 0,
      outputFps: outSpan > 0 ? (outs.length - 1) / outSpan : 0,
      dropRate: sent > 0 ? 1 - outs.length / sent : 0,
      deadlineMissRate: lat.length > 0 ? lat.filter((l) => l > config.budgetMs).length / lat.length : 0,
      timeToFirstFrameMs: first !== undefined && connected !== undefined ? first - connected : null,
      latencyMs: distribution(lat),
    });
  }
  const sentAll = records.length;
  const outAll = records.filter((r) => r.receivedByClientMs !== undefined).length;
  const ttffs = sessions.map((s) => s.timeToFirstFrameMs).filter((v): v is number => v !== null);
  return {
    config,
    startedAt: new Date(extra.startMs).toISOString(),
    latencyMs: latency,
    roundTripMs: distribution(roundTrips),
    stagesMs,
    overheadRatio: computeMedianSum > 0 ? latency.p50 / computeMedianSum : NaN,
    inputFps: sessions.reduce((a, s) => a + s.inputFps, 0),
    outputFps: sessions.reduce((a, s) => a + s.outputFps, 0),
    dropRate: sentAll > 0 ? 1 - outAll / sentAll : 0,
    deadlineMissRate: latencies.length > 0 ? latencies.filter((l) => l > config.budgetMs).length / latencies.length : 0,
    timeToFirstFrameMs: ttffs.length ? Math.max(...ttffs) : null,
    eventLoopDelayMs: extra.eventLoopDelayMs,
    cpuPercent: extra.cpuPercent,
    sessions,
    timeline: matched.map((r) => [
      round((r.arrivalMs! - extra.startMs) / 1000, 3),
      round(r.firstPacketOutMs! - r.arrivalMs!, 2),
      r.session,
    ]),
    frames,
  };
}

/** "full / half / reuse" counts; reports written before frames were recorded have none. */
function pathCounts(frames: FrameSummary[] | undefined): string {
  if (!frames) return '–';
  const n = (test: (p: FramePath | undefined) => boolean): number => frames.filter((f) => test(f.path)).length;
  return `${n((p) => p?.kind === 'model' && p.scale === 1)} / ${n((p) => p?.kind === 'model' && p.scale === 0.5)} / ${n((p) => p?.kind === 'reuse')}`;
}

function spanSeconds(times: number[]): number {
  if (times.length < 2) return 0;
  return (Math.max(...times) - Math.min(...times)) / 1000;
}

function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function f1(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(1);
}

function pct(v: number): string {
  return Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '–';
}

/** The Markdown report: a person reads this first. */
export function renderMarkdown(report: RunReport): string {
  const c = report.config;
  const lines = [
    `# End-to-end benchmark: ${c.label}`,
    '',
    `${report.startedAt} · ${c.machine}`,
    '',
    `${c.sessions} session(s) × ${c.seconds} s, ${c.codec} ${c.inputWidth}×${c.inputHeight} at ${c.fps} fps → model ${c.model} at ${c.modelWidth}×${c.modelHeight}, ${c.steps} step(s), consistency ${c.consistency}, provider ${c.provider}, budget ${c.budgetMs} ms`,
    '',
    '| metric | value |',
    '|---|---|',
    `| server latency p50 / p95 / p99 (last packet in → first packet out) | ${f1(report.latencyMs.p50)} / ${f1(report.latencyMs.p95)} / ${f1(report.latencyMs.p99)} ms |`,
    `| client round trip p50 / p95 (frame sent → restyled frame decoded) | ${f1(report.roundTripMs.p50)} / ${f1(report.roundTripMs.p95)} ms |`,
    `| input fps / output fps (all sessions) | ${f1(report.inputFps)} / ${f1(report.outputFps)} |`,
    `| dropped (sent but never returned) | ${pct(report.dropRate)} |`,
    `| deadline misses (of returned frames) | ${pct(report.deadlineMissRate)} |`,
    `| engine path of returned frames: model at full / half resolution / previous output again | ${pathCounts(report.frames)} |`,
    `| time to first frame | ${f1(report.timeToFirstFrameMs)} ms |`,
    `| overhead ratio (median latency ÷ Σ median stage compute) | ${report.overheadRatio.toFixed(3)} |`,
    `| main-thread event-loop delay p50 / p99 / max | ${f1(report.eventLoopDelayMs.p50)} / ${f1(report.eventLoopDelayMs.p99)} / ${f1(report.eventLoopDelayMs.max)} ms |`,
    `| process CPU (of one core) | ${report.cpuPercent.toFixed(0)}% |`,
    '',
    '## Per stage (ms)',
    '',
    '| stage | p50 | p95 | p99 | mean |',
    '|---|---|---|---|---|',
    ...Object.entries(report.stagesMs).map(([name, d]) => `| ${name} | ${f1(d.p50)} | ${f1(d.p95)} | ${f1(d.p99)} | ${f1(d.mean)} |`),
    '',
    '## Per session',
    '',
    '| session | sent | returned | in fps | out fps | dropped | misses | latency p50 / p95 | first frame |',
    '|---|---|---|---|---|---|---|---|---|',
    ...report.sessions.map(
      (s) =>
        `| ${s.session} | ${s.framesSent} | ${s.framesOut} | ${f1(s.inputFps)} | ${f1(s.outputFps)} | ${pct(s.dropRate)} | ${pct(s.deadlineMissRate)} | ${f1(s.latencyMs.p50)} / ${f1(s.latencyMs.p95)} | ${f1(s.timeToFirstFrameMs)} ms |`,
    ),
    '',
  ];
  return lines.join('\n');
}

/** Side by side, as ratios b ÷ a (within one machine, ratios are what survive noise). */
export function renderComparison(a: RunReport, b: RunReport): string {
  const rows: Array<[string, number, number]> = [
    ['latency p50 ms', a.latencyMs.p50, b.latencyMs.p50],
    ['latency p95 ms', a.latencyMs.p95, b.latencyMs.p95],
    ['latency p99 ms', a.latencyMs.p99, b.latencyMs.p99],
    ['output fps', a.outputFps, b.outputFps],
    ['drop rate', a.dropRate, b.dropRate],
    ['deadline-miss rate', a.deadlineMissRate, b.deadlineMissRate],
    ['event-loop p99 ms', a.eventLoopDelayMs.p99, b.eventLoopDelayMs.p99],
    ...[...new Set([...Object.keys(a.stagesMs), ...Object.keys(b.stagesMs)])].map((name): [string, number, number] => [
      `${name} p50 ms`,
      a.stagesMs[name as StageName]?.p50 ?? NaN,
      b.stagesMs[name as StageName]?.p50 ?? NaN,
    ]),
  ];
  return [
    `# Comparison: ${a.config.label} (A) vs ${b.config.label} (B)`,
    '',
    '| metric | A | B | B ÷ A |',
    '|---|---|---|---|',
    ...rows.map(
      ([name, x, y]) =>
        `| ${name} | ${x.toFixed(2)} | ${y.toFixed(2)} | ${x !== 0 && Number.isFinite(x) && Number.isFinite(y) ? (y / x).toFixed(2) : '–'} |`,
    ),
    '',
  ].join('\n');
}

/** A self-contained HTML page: latency histogram, latency over time, and a per-stage bar. */
export function renderHtml(report: RunReport): string {
  const lat = report.timeline.map((t) => t[1]);
  const maxLat = Math.max(report.config.budgetMs * 1.5, ...lat, 1);
  const bins = 40;
  const counts = new Array<number>(bins).fill(0);
  for (const v of lat) counts[Math.min(bins - 1, Math.floor((v / maxLat) * bins))]!++;
  const maxCount = Math.max(...counts, 1);
  const W = 720;
  const H = 220;
  const bw = W / bins;
  const hist = counts
    .map(
      (n, i) =>
        `<rect x="${(i * bw).toFixed(1)}" y="${(H - (n / maxCount) * H).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${((n / maxCount) * H).toFixed(1)}" fill="#4a7bd0"><title>${((i * maxLat) / bins).toFixed(1)}–${(((i + 1) * maxLat) / bins).toFixed(1)} ms: ${n}</title></rect>`,
    )
    .join('');
  const budgetX = ((report.config.budgetMs / maxLat) * W).toFixed(1);
  const tMax = Math.max(...report.timeline.map((t) => t[0]), 1);
  const colours = ['#4a7bd0', '#d0704a', '#4ab07b', '#a04ad0', '#d0b04a', '#4ab0d0'];
  const points = report.timeline
    .map(
      ([t, l, s]) =>
        `<circle cx="${((t / tMax) * W).toFixed(1)}" cy="${(H - (Math.min(l, maxLat) / maxLat) * H).toFixed(1)}" r="1.6" fill="${colours[s % colours.length]}"/>`,
    )
    .join('');
  const stageEntries = Object.entries(report.stagesMs).filter(([name]) => name !== 'reuse');
  const total = stageEntries.reduce((a, [, d]) => a + (d.p50 || 0), 0) || 1;
  let x = 0;
  const stageBar = stageEntries
    .map(([name, d], i) => {
      const w = ((d.p50 || 0) / total) * W;
      const rect = `<rect x="${x.toFixed(1)}" y="0" width="${Math.max(w, 0).toFixed(1)}" height="40" fill="${colours[i % colours.length]}"><title>${name}: median ${d.p50.toFixed(2)} ms</title></rect>${w > 40 ? `<text x="${(x + 3).toFixed(1)}" y="25" font-size="11" fill="#fff">${name} ${d.p50.toFixed(1)}</text>` : ''}`;
      x += w;
      return rect;
    })
    .join('');
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return `<!doctype html><html><head><meta charset="utf-8"><title>sds bench: ${esc(report.config.label)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:800px;color:#222}svg{background:#f6f7f9;border:1px solid #dde}h2{margin-top:28px}table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}</style></head><body>
<h1>${esc(report.config.label)}</h1>
<p>${esc(report.startedAt)} · ${esc(report.config.machine)}<br>${report.config.sessions} session(s), ${report.config.codec} ${report.config.inputWidth}×${report.config.inputHeight}@${report.config.fps} → ${report.config.modelWidth}×${report.config.modelHeight}, ${report.config.steps} step(s), budget ${report.config.budgetMs} ms</p>
<p><b>Server latency</b> p50 ${f1(report.latencyMs.p50)} ms · p95 ${f1(report.latencyMs.p95)} ms · p99 ${f1(report.latencyMs.p99)} ms — <b>output</b> ${f1(report.outputFps)} fps — dropped ${pct(report.dropRate)} — event-loop p99 ${f1(report.eventLoopDelayMs.p99)} ms</p>
<h2>Latency histogram</h2>
<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${hist}<line x1="${budgetX}" x2="${budgetX}" y1="0" y2="${H}" stroke="#c00" stroke-dasharray="4 3"/><text x="${Number(budgetX) + 4}" y="14" fill="#c00" font-size="11">budget ${report.config.budgetMs} ms</text></svg>
<div>0 – ${maxLat.toFixed(0)} ms</div>
<h2>Latency over time</h2>
<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${points}<line x1="0" x2="${W}" y1="${(H - (report.config.budgetMs / maxLat) * H).toFixed(1)}" y2="${(H - (report.config.budgetMs / maxLat) * H).toFixed(1)}" stroke="#c00" stroke-dasharray="4 3"/></svg>
<div>0 – ${tMax.toFixed(0)} s; colour = session</div>
<h2>Where a frame's time goes (median per stage)</h2>
<svg width="${W}" height="40" viewBox="0 0 ${W} 40">${stageBar}</svg>
<table><tr><th>stage</th><th>p50</th><th>p95</th><th>p99</th></tr>${Object.entries(report.stagesMs)
    .map(([n, d]) => `<tr><td>${n}</td><td>${f1(d.p50)}</td><td>${f1(d.p95)}</td><td>${f1(d.p99)}</td></tr>`)
    .join('')}</table>
</body></html>
`;
}
