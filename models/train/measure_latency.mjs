// Measures ONNX Runtime (node, CPU EP) latency of vae_encoder + denoiser (1 step) + vae_decoder.
// Usage (from the repository root so node_modules resolves):
//   node models/train/measure_latency.mjs [modelDir=models/default] [width=320] [height=256] [runs=100] [warmup=20]
import * as ort from 'onnxruntime-node';
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2] ?? 'models/default';
const W = Number(process.argv[3] ?? 320);
const H = Number(process.argv[4] ?? 256);
const RUNS = Number(process.argv[5] ?? 100);
const WARMUP = Number(process.argv[6] ?? 20);

// Configurations measured (all: CPU EP, graphOptimizationLevel 'all', intraOpNumThreads 2):
//   spin-on : ORT defaults otherwise (worker threads busy-wait between runs)
//   spin-off: session.intra_op.allow_spinning = '0' (recommended: with three sessions run back to back
//             on 2 cores, idle spinning workers of one session steal the cores the next one needs)
// SPIN=0 measures only spin-off, SPIN=1 only spin-on; default: both.
const base = { executionProviders: ['cpu'], intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
const configs = [];
if (process.env.SPIN !== '0') configs.push(['spin-on', base]);
if (process.env.SPIN !== '1') configs.push(['spin-off', { ...base, extra: { session: { intra_op: { allow_spinning: '0' } } } }]);

let dim = 32;
const manifestPath = path.join(dir, 'manifest.json');
if (fs.existsSync(manifestPath)) {
  const m = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  dim = m.conditioning?.dim ?? dim;
}

for (const [label, opts] of configs) {
  const enc = await ort.InferenceSession.create(path.join(dir, 'vae_encoder.onnx'), opts);
  const den = await ort.InferenceSession.create(path.join(dir, 'denoiser.onnx'), opts);
  const dec = await ort.InferenceSession.create(path.join(dir, 'vae_decoder.onnx'), opts);

  const rnd = (n) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1; return a; };
  const img = new ort.Tensor('float32', rnd(3 * H * W), [1, 3, H, W]);
  const emb = new ort.Tensor('float32', rnd(dim), [1, 1, dim]);
  const ts = new ort.Tensor('float32', new Float32Array([499]), [1]);
  const h = H / 8, w = W / 8;

  const now = () => Number(process.hrtime.bigint()) / 1e6;
  const t = { enc: [], den: [], dec: [], total: [] };

  for (let i = 0; i < WARMUP + RUNS; i++) {
    const t0 = now();
    const e = await enc.run({ sample: img });
    const lp = e.latent_parameters;
    const zc = lp.dims[1] / 2;
    const z = new ort.Tensor('float32', lp.data.slice(0, zc * h * w), [1, zc, h, w]);
    const t1 = now();
    const d = await den.run({ sample: z, timestep: ts, encoder_hidden_states: emb });
    const t2 = now();
    const o = await dec.run({ latent_sample: d.out_sample });
    const t3 = now();
    if (o.sample.dims[2] !== H || o.sample.dims[3] !== W) throw new Error(`bad output dims ${o.sample.dims}`);
    if (i >= WARMUP) { t.enc.push(t1 - t0); t.den.push(t2 - t1); t.dec.push(t3 - t2); t.total.push(t3 - t0); }
  }

  const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
  const res = {};
  for (const k of Object.keys(t)) res[k] = { median: +q(t[k], 0.5).toFixed(2), p95: +q(t[k], 0.95).toFixed(2) };
  console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''} ${dir} ${W}x${H} batch=1 runs=${RUNS} intraOpNumThreads=2 ${label}`);
  console.log(JSON.stringify(res));
  await enc.release?.(); await den.release?.(); await dec.release?.();
}
