// `sds bench <kind>`: the benchmark entry point. Each kind lives in its own module; this file only
// parses flags and dispatches.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_DIR } from '../server/config.js';

const HELP = `sds bench — measure latency

  sds bench model [--model DIR] [--provider cpu|cuda|webgpu] [--resolution WxH ...] [--steps N]
                  [--iterations N] [--warmup N] [--out FILE.json]
      per-component model latency (vae_encode, denoise per step, vae_decode, total): median, p95
      at the model's native resolution and 512x512 unless --resolution is given.

  sds bench e2e   [--seconds S] [--fps F] [--codec VP8|H264] [--sessions N] [--out DIR] ...
      end to end over real WebRTC on loopback (see README "Benchmark").
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
    });
    return 0;
  }
  if (kind === 'e2e') {
    const { runE2eBenchCli } = await import('./e2e-bench.js');
    return runE2eBenchCli(rest);
  }
  process.stderr.write(`unknown bench kind "${kind}"\n\n${HELP}`);
  return 2;
}

function parseResolution(raw: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(raw);
  if (!m) throw new Error(`--resolution must be WxH, got "${raw}"`);
  return [Number(m[1]), Number(m[2])];
}
