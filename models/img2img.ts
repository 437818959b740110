// The img2img pipeline, one frame: RGB → VAE encode → noise to t0 → denoise ×steps → VAE decode → RGB.
// Read top to bottom like a diffusers pipeline; the math lives in ./scheduler.ts, the tensors in
// ./diffusion-components.ts. Each stage is timed with nowMs() so the engine can see where the frame went.
import type { RgbImage, StageName, StageTiming } from '../frame/video-frame.js';
import { nowMs } from '../frame/clock.js';
import type { DiffusionComponents, Latent } from './diffusion-components.js';
import type { ConditioningEmbeds } from './conditioning.js';
import type { ModelManifest } from './manifest.js';
import { checkImage } from './pixel-tensors.js';
import { addNoise, gaussianNoise, NoiseSchedule, predictX0, streamTimesteps } from './scheduler.js';
import { applyGuidance, type LatentDims, type LatentGuidance } from './latent-guidance.js';

export interface Img2ImgOptions {
  steps: number;
  strength: number;
  /** Denoiser conditioning (a style embedding, a blend, or a prompt's embeddings). */
  conditioning: ConditioningEmbeds;
  noise: FixedNoise;
  /**
   * Temporal guidance for this frame, asked for once its latent size is known (after VAE encode):
   * the previous output warped here and where to trust it, blended into every x0 estimate.
   */
  guidance?: (dims: LatentDims, stages: StageTiming[]) => LatentGuidance | undefined;
}

export interface Img2ImgResult {
  image: RgbImage;
  /** Latent layout [1, C, H, W]. */
  dims: LatentDims;
  /** The final x0 estimate, scaled (the denoiser's space): what the next frame's guidance warps. */
  outputLatent: Float32Array;
}

/**
 * A stream's fixed noise: the same seed (or seed blend) and latent size always give the same tensor.
 * A blend of seeds mixes their noises as Σ wᵢ·nᵢ / √(Σ wᵢ²), which keeps it unit-variance Gaussian,
 * so the result is still noise the model expects, in between the seeds' looks.
 */
export class FixedNoise {
  private cached: Float32Array | undefined;
  /** Identifies the noise: a stream's noise (and its temporal cache) is renewed when this changes. */
  readonly key: string;
  constructor(
    readonly seed: number,
    private readonly blend?: ReadonlyArray<{ seed: number; weight: number }>,
  ) {
    this.key = blend ? blend.map((p) => `${p.seed}×${p.weight}`).join('+') : String(seed);
  }
  get(length: number): Float32Array {
    if (this.cached && this.cached.length === length) return this.cached;
    if (!this.blend) return (this.cached = gaussianNoise(this.seed, length));
    const out = new Float32Array(length);
    const norm = Math.sqrt(this.blend.reduce((s, p) => s + p.weight * p.weight, 0));
    for (const part of this.blend) {
      if (part.weight === 0) continue;
      const n = gaussianNoise(part.seed, length);
      const w = part.weight / norm;
      for (let i = 0; i < length; i++) out[i] += w * n[i]!;
    }
    return (this.cached = out);
  }
}

export async function img2img(
  model: { manifest: ModelManifest; schedule: NoiseSchedule; components: DiffusionComponents },
  image: RgbImage,
  opts: Img2ImgOptions,
  stages: StageTiming[],
): Promise<Img2ImgResult> {
  const { manifest, schedule } = model;
  const { encoder, denoiser, decoder } = model.components;
  const timed = async <T>(name: StageName, fn: () => T | Promise<T>): Promise<T> => {
    const startMs = nowMs();
    const result = await fn();
    stages.push({ name, startMs, endMs: nowMs() });
    return result;
  };

  if (!Number.isInteger(opts.steps) || opts.steps < 1) throw new RangeError(`steps must be a positive integer, got ${opts.steps}`);
  checkImage(image, manifest);
  // Latents are scaled (the denoiser's space) from the encoder to the decoder; the VAE does its own conversions.
  const encoded = await encoder.encode(image, stages);
  const inputLatent = encoded.data;
  const guidance = opts.guidance?.(encoded.dims, stages);
  const latent = await timed('denoise', async () => {
    const x0 = inputLatent.slice();
    const noise = opts.noise.get(x0.length);
    const timesteps = streamTimesteps(opts.steps, opts.strength, manifest.scheduler.numTrainTimesteps);
    if (denoiser.inGraph) {
      // The step graph noises x0, runs the UNet and gives the x0 estimate on the execution provider; the host only
      // guides it. The next step noises the guided estimate again, as the loop below does with addNoise.
      for (const t of timesteps) {
        x0.set(await denoiser.x0Estimate({ data: x0, dims: encoded.dims }, noise, schedule.alphaBar(t), t, opts.conditioning));
        if (guidance) applyGuidance(x0, guidance);
      }
      return { data: x0, dims: encoded.dims };
    }
    const x: Latent = { data: addNoise(x0, noise, schedule.alphaBar(timesteps[0]!)), dims: encoded.dims };
    for (let i = 0; i < timesteps.length; i++) {
      const t = timesteps[i]!;
      const prediction = await denoiser.predict(x, t, opts.conditioning);
      predictX0(prediction, x.data, schedule.alphaBar(t), manifest.scheduler.predictionType, x0);
      if (guidance) applyGuidance(x0, guidance);
      // Multi-step: re-noise the x0 estimate to the next timestep with the stream's fixed noise.
      const next = timesteps[i + 1];
      if (next !== undefined) addNoise(x0, noise, schedule.alphaBar(next), x.data);
    }
    return { data: x0, dims: encoded.dims };
  });

  // Neither decoder writes into its input, so the final x0 is what the next frame's guidance warps.
  const output = await decoder.decode(latent, stages);
  const outputLatent = latent.data;
  return { image: output, dims: encoded.dims, outputLatent };
}
