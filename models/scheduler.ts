// Diffusion scheduler math over a config: pure functions, no I/O (diffusers' split of scheduler vs
// pipeline). Noise levels, forward noising, x0 from the model's prediction, timestep selection for
// few-step img2img, and the seeded fixed noise each stream keeps.

export type BetaSchedule = 'scaled_linear' | 'linear';
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';
export type TimestepSpacing = 'trailing' | 'leading' | 'linspace';

export interface SchedulerConfig {
  betaSchedule: BetaSchedule;
  betaStart: number;
  betaEnd: number;
  numTrainTimesteps: number;
  predictionType: PredictionType;
  timestepSpacing: TimestepSpacing;
}

/** β_t for t = 0..T-1. scaled_linear (SD): linspace(√βstart, √βend, T)². */
export function betas(config: SchedulerConfig): Float64Array {
  const n = config.numTrainTimesteps;
  const out = new Float64Array(n);
  const scaled = config.betaSchedule === 'scaled_linear';
  const a = scaled ? Math.sqrt(config.betaStart) : config.betaStart;
  const b = scaled ? Math.sqrt(config.betaEnd) : config.betaEnd;
  for (let i = 0; i < n; i++) {
    const v = n === 1 ? a : a + ((b - a) * i) / (n - 1);
    out[i] = scaled ? v * v : v;
  }
  return out;
}

/** ᾱ_t = Π_{s≤t} (1 - β_s). */
export function alphasCumprod(config: SchedulerConfig): Float64Array {
  const beta = betas(config);
  const out = new Float64Array(beta.length);
  let prod = 1;
  for (let i = 0; i < beta.length; i++) {
    prod *= 1 - beta[i]!;
    out[i] = prod;
  }
  return out;
}

/** The noise schedule of one model: ᾱ_t and σ_t = √((1-ᾱ_t)/ᾱ_t) by integer timestep. */
export class NoiseSchedule {
  readonly alphasCumprod: Float64Array;
  constructor(readonly config: SchedulerConfig) {
    this.alphasCumprod = alphasCumprod(config);
  }
  alphaBar(t: number): number {
    const i = Math.min(this.alphasCumprod.length - 1, Math.max(0, Math.round(t)));
    return this.alphasCumprod[i]!;
  }
  sigma(t: number): number {
    const ab = this.alphaBar(t);
    return Math.sqrt((1 - ab) / ab);
  }
}

/** x_t = √ᾱ·x0 + √(1-ᾱ)·ε (into `out`, which may alias x0). */
export function addNoise(
  x0: Float32Array,
  noise: Float32Array,
  alphaBar: number,
  out: Float32Array = new Float32Array(x0.length),
): Float32Array {
  if (noise.length < x0.length) throw new Error(`noise has ${noise.length} values, latent needs ${x0.length}`);
  const a = Math.sqrt(alphaBar);
  const s = Math.sqrt(1 - alphaBar);
  for (let i = 0; i < x0.length; i++) out[i] = a * x0[i]! + s * noise[i]!;
  return out;
}

/** The model's x0 estimate from its raw output at x_t (in place into `out`, which may alias `prediction`). */
export function predictX0(
  prediction: Float32Array,
  xt: Float32Array,
  alphaBar: number,
  type: PredictionType,
  out: Float32Array = new Float32Array(xt.length),
): Float32Array {
  const a = Math.sqrt(alphaBar);
  const s = Math.sqrt(1 - alphaBar);
  switch (type) {
    case 'epsilon': // x0 = (x_t - √(1-ᾱ)·ε) / √ᾱ
      for (let i = 0; i < xt.length; i++) out[i] = (xt[i]! - s * prediction[i]!) / a;
      break;
    case 'v_prediction': // x0 = √ᾱ·x_t - √(1-ᾱ)·v
      for (let i = 0; i < xt.length; i++) out[i] = a * xt[i]! - s * prediction[i]!;
      break;
    case 'sample':
      if (out !== prediction) out.set(prediction.subarray(0, xt.length));
      break;
  }
  return out;
}

/** numpy's round (half to even), so timesteps match diffusers exactly. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * diffusers `set_timesteps` (DDIM/Euler family), descending:
 * trailing: round(arange(T, 0, -T/N)) - 1   (T=1000, N=4 → [999, 749, 499, 249])
 * leading:  arange(0, N)·(T // N), reversed  (→ [750, 500, 250, 0])
 * linspace: round(linspace(0, T-1, N)), reversed (→ [999, 666, 333, 0])
 */
export function inferenceTimesteps(numInferenceSteps: number, numTrainTimesteps: number, spacing: TimestepSpacing): number[] {
  const n = numInferenceSteps;
  const T = numTrainTimesteps;
  const out: number[] = [];
  if (spacing === 'trailing') {
    const step = -T / n; // numpy arange: start + i·step
    for (let i = 0; i < n; i++) out.push(roundHalfEven(T + i * step) - 1);
  } else if (spacing === 'leading') {
    const ratio = Math.floor(T / n);
    for (let i = n - 1; i >= 0; i--) out.push(i * ratio);
  } else {
    for (let i = n - 1; i >= 0; i--) out.push(roundHalfEven(n === 1 ? 0 : ((T - 1) * i) / (n - 1)));
  }
  return out;
}

/**
 * diffusers img2img `get_timesteps`: schedule N steps over the full range, then keep the last
 * init = min(int(N·strength), N) of them. (N=4, strength 0.5, trailing → [499, 249].)
 * Fewer steps run than requested, and strength < 1/N runs none.
 */
export function diffusersImg2ImgTimesteps(numInferenceSteps: number, strength: number, config: SchedulerConfig): number[] {
  const all = inferenceTimesteps(numInferenceSteps, config.numTrainTimesteps, config.timestepSpacing);
  const init = Math.min(Math.floor(numInferenceSteps * strength), numInferenceSteps);
  const tStart = Math.max(numInferenceSteps - init, 0);
  return all.slice(tStart);
}

/**
 * What the server runs (StreamDiffusion style): exactly `steps` denoising steps, trailing spacing over
 * [0, strength·T): round(arange(s·T, 0, -s·T/steps)) - 1, clamped to [0, T-1].
 * strength 0.5, 1 step → [499]; strength 0.5, 2 steps → [499, 249]; strength 1, 4 steps → [999, 749, 499, 249].
 */
export function streamTimesteps(steps: number, strength: number, numTrainTimesteps: number): number[] {
  const T = numTrainTimesteps;
  const span = Math.min(1, Math.max(0, strength)) * T;
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    const v = roundHalfEven(span + i * (-span / steps)) - 1;
    out.push(Math.min(T - 1, Math.max(0, v)));
  }
  return out;
}

/** mulberry32: a small, fast 32-bit PRNG; uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic standard-normal tensor from a 32-bit seed (Box–Muller over mulberry32). */
export function gaussianNoise(seed: number, length: number): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i += 2) {
    const u1 = 1 - rand(); // (0, 1]: log is finite
    const u2 = rand();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/**
 * LCM's guidance-scale embedding (the `timestep_cond` input of LCM-distilled UNets), as diffusers'
 * LatentConsistencyModelPipeline.get_guidance_scale_embedding computes it: w' = (w − 1)·1000, then
 * [sin(w'·f_k), cos(w'·f_k)] for f_k = exp(−k·ln(10000)/(dim/2 − 1)), k = 0 … dim/2 − 1, zero-padded to an odd dim.
 */
export function guidanceScaleEmbedding(guidanceScale: number, dim: number): Float32Array {
  const w = (guidanceScale - 1) * 1000;
  const half = Math.floor(dim / 2);
  const step = Math.log(10000) / (half - 1);
  const out = new Float32Array(dim);
  for (let k = 0; k < half; k++) {
    const arg = w * Math.exp(-k * step);
    out[k] = Math.sin(arg);
    out[half + k] = Math.cos(arg);
  }
  return out;
}

/** The guidance scale LCM pipelines default to (diffusers' LatentConsistencyModelPipeline). */
export const LCM_GUIDANCE_SCALE = 8.5;
