import { writeFileSync } from 'node:fs';
// `sds bench <kind>`: the benchmark entry point. Each kind lives in its own module; this file only
// parses flags and dispatches.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_DIR } from '../server/config.js';
import type { MotionKind } from './motion-clips.js';

const HELP = `sds bench — measure latency

  sds bench model [--model DIR] [--provider cpu|cuda|webgpu] [--resolution WxH ...] [--steps N]
                  [--iterations N] [--warmup N] [--out FILE.json] [--no-cpu-fallback] [--host-pixels]
      per-component model latency (vae_encode, denoise per step, vae_decode, host, total): median, p95
      at the model's native resolution and 512x512 unless --resolution is given. --no-cpu-fallback:
      fail when the provider cannot load the model instead of measuring the CPU under its name.
      host: the frame's time outside the model's runs. --host-pixels: convert pixels on the host instead of
      in graphs around the VAE (the path before pixel graphs), to compare the two.

  sds bench e2e   [--seconds S] [--fps F] [--codec VP8|H264] [--sessions N] [--out DIR] ...
      end to end over real WebRTC on loopback (see README "Benchmark").

  sds bench quality [--clip occluder|static-noise|pan|zoom|rotate|FILE.y4m ...] [--consistency 0,0.5,1] ...
      temporal consistency: warp error, flicker index, style fidelity, added latency (--help for more).

  sds bench browser [--seconds S] [--style ID] [--consistency C] [--out DIR] ...
      glass-to-glass latency of the web app in headless Chromium with a fake camera (--help for more).

  sds bench batch [--batch 1,2,4] [--iterations N] [--model DIR] [--provider P]
      would batching several streams' frames into one model run help? Per-frame cost at each batch size.

  sds bench flow  [--frames N]
      optical-flow accuracy (end-point error on clips with known motion) and cost, next to OpenCV.

  sds bench consistency [--clip occluder|static-noise|pan|zoom|rotate ...] [--frames N] [--consistency C] [--size WxH]
      the temporal-consistency path alone (flow, masks, warps, image blend), without the model: added ms p50/p95.

  sds bench cluster-burst [--runs 10] [--publishers 8] [--front-doors 2] [--max-sessions 4]
      a burst of publishers arriving at once over a real Redis, two workers and N front doors: the spread per run.

  sds bench codec [--size WxH] [--frames N] [--out FILE.json]
      encode/decode ms per frame: libvpx VP8 and libx264 H.264 on the host, NVENC/NVDEC where a GPU opens them.

  sds bench soak  [--minutes M] [--sessions N] [--viewers V] [--interval S] [--out DIR] ...
      long run: RSS, heap, handles, workers, live resources and latency per interval; exits 1 on growth or leaks.
`;

export async function runBenchCli(argv: string[]): Promise<number> {
  const [kind, ...rest] = argv;
  if (kind === undefined || kind === '--help' || kind === '-h') {
    process.stdout.write(HELP);
    return kind === undefined ? 1 : 0;
  }
  if (kind === 'model') {
    const { values } = parseArgs({
      args: rest,
      options: {
        model: { type: 'string' },
        provider: { type: 'string' },
        resolution: { type: 'string', multiple: true },
        steps: { type: 'string' },
        iterations: { type: 'string' },
        warmup: { type: 'string' },
        out: { type: 'string' },
        'no-cpu-fallback': { type: 'boolean' },
        'host-pixels': { type: 'boolean' },
        help: { type: 'boolean' },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    const { runModelBench } = await import('./model-bench.js');
    await runModelBench({
      modelDir: path.resolve(values.model ?? DEFAULT_MODEL_DIR),
      provider: (values.provider ?? 'cpu') as 'cpu' | 'cuda' | 'webgpu',
      resolutions: values.resolution?.map(parseResolution),
      steps: values.steps ? Number(values.steps) : 1,
      iterations: values.iterations ? Number(values.iterations) : 100,
      warmup: values.warmup ? Number(values.warmup) : 10,
      out: values.out,
      fallbackToCpu: !values['no-cpu-fallback'],
      pixelGraphs: !values['host-pixels'],
    });
    return 0;
  }
  if (kind === 'e2e') {
    const { runE2eBenchCli } = await import('./e2e-bench.js');
    return runE2eBenchCli(rest);
  }
  if (kind === 'browser') {
    const { runBrowserBenchCli } = await import('./browser-bench.js');
    return runBrowserBenchCli(rest);
  }
  if (kind === 'quality') {
    const { runQualityBenchCli } = await import('./quality-bench.js');
    return runQualityBenchCli(rest);
  }
  if (kind === 'batch') {
    const { values } = parseArgs({
      args: rest,
      options: { batch: { type: 'string' }, iterations: { type: 'string' }, model: { type: 'string' }, provider: { type: 'string' } },
    });
    const { runBatchBench, formatBatchTable } = await import('./batch-bench.js');
    const rows = await runBatchBench({
      modelDir: path.resolve(values.model ?? DEFAULT_MODEL_DIR),
      provider: (values.provider ?? 'cpu') as 'cpu' | 'cuda' | 'webgpu',
      batches: (values.batch ?? '1,2,4').split(',').map(Number),
      iterations: values.iterations ? Number(values.iterations) : 50,
    });
    process.stdout.write(formatBatchTable(rows) + '\n');
    return 0;
  }
  if (kind === 'codec') {
    const { values } = parseArgs({
      args: rest,
      options: { size: { type: 'string' }, frames: { type: 'string' }, out: { type: 'string' } },
    });
    const { runCodecBench, formatCodecTable } = await import('./codec-bench.js');
    const [width, height] = values.size ? parseResolution(values.size) : [512, 512];
    const options = { width, height, frames: values.frames ? Number(values.frames) : 150 };
    const rows = await runCodecBench(options);
    process.stdout.write(formatCodecTable(rows, options));
    if (values.out) writeFileSync(values.out, JSON.stringify({ ...options, date: new Date().toISOString(), rows }, null, 2) + '\n');
    return 0;
  }
  if (kind === 'soak') return (await import('./soak.js')).runSoakCli(rest);
  if (kind === 'cluster-burst') return (await import('./cluster-burst.js')).runClusterBurstCli(rest);
  if (kind === 'flow') {
    const { values } = parseArgs({ args: rest, options: { frames: { type: 'string' }, photo: { type: 'string' } } });
    const { runFlowBench, formatFlowTable } = await import('./flow-bench.js');
    const { width, height } = { width: 320, height: 256 };
    const rows = await runFlowBench(
      {
        photo: values.photo ?? path.join(DEFAULT_MODEL_DIR, 'testdata', 'heldout.png'),
        width,
        height,
        gridFactor: 4,
        frames: values.frames ? Number(values.frames) : 30,
        references: ['dis-ultrafast', 'dis-medium', 'farneback'],
      },
      (line) => process.stderr.write(line + '\n'),
    );
    process.stdout.write(formatFlowTable(rows) + '\n');
    return 0;
  }
  if (kind === 'consistency') {
    const { values } = parseArgs({
      args: rest,
      options: {
        clip: { type: 'string', multiple: true },
        frames: { type: 'string' },
        consistency: { type: 'string' },
        size: { type: 'string' },
      },
    });
    const { runConsistencyBench, formatConsistencyTable } = await import('./consistency-bench.js');
    // The default model's native size, or a GPU model's (--size 512x512) to see what the path costs there.
    const [width, height] = values.size ? parseResolution(values.size) : [320, 256];
    const rows = await runConsistencyBench({
      photo: path.join(DEFAULT_MODEL_DIR, 'testdata', 'heldout.png'),
      width,
      height,
      latentFactor: 8,
      latentChannels: 4,
      kinds: (values.clip ?? ['occluder', 'static-noise', 'pan']) as MotionKind[],
      clipFrames: 30,
      frames: values.frames ? Number(values.frames) : 300,
      consistency: values.consistency ? Number(values.consistency) : 1,
    });
    process.stdout.write(formatConsistencyTable(rows) + '\n');
    return 0;
  }
  process.stderr.write(`unknown bench kind "${kind}"\n\n${HELP}`);
  return 2;
}

function parseResolution(raw: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(raw);
  if (!m) throw new Error(`--resolution must be WxH, got "${raw}"`);
  return [Number(m[1]), Number(m[2])];
}
