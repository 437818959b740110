// One stream's restyling next to the model: the state a stream keeps from frame to frame on the thread
// that runs its model (its fixed noise; the latent cache with the previous frame, flow and guidance) and
// the per-frame path through it (half-size degradation, flow, img2img with guidance, image blend). A stream
// is pinned to one inference worker, which holds one StreamRestyler per stream; tests drive it directly.
import type { RgbImage, StageTiming } from '../frame/video-frame.js';
import { nowMs } from '../frame/clock.js';
import type { StyleBlend } from '../models/conditioning.js';
import { FixedNoise, img2img } from '../models/img2img.js';
import type { LoadedModel } from '../models/loaded-model.js';
import type { PromptPart, SeedPart } from '../models/restyle-types.js';
import { Doubler, halve } from '../models/resample.js';
import { LatentCache, type TemporalGuidance } from './latent-cache.js';

/** One frame and the stream's parameters for it, as the worker receives them. */
export interface StreamFrameRequest {
  image: RgbImage;
  style: string | StyleBlend;
  /** Text models: the prompt(s) to condition on, weighted (one part of weight 1 for a plain prompt). */
  prompt: readonly PromptPart[];
  strength: number;
  steps: number;
  seed: number;
  seedBlend?: SeedPart[];
  /** Temporal consistency 0..1 (0: every frame independent, bit for bit). */
  consistency: number;
  /** 0.5 runs the model at half width and height and scales the result back (deadline degradation). */
  scale: 1 | 0.5;
}

export interface StreamFrameResult {
  image: RgbImage;
  stages: StageTiming[];
}

export class StreamRestyler {
  private noise: FixedNoise | undefined;
  private cache: LatentCache;
  /** Flow runs at twice the latent grid: image pixels per flow pixel = the VAE's reduction / 2. */
  private readonly flowFactor: number;
  /** The half-resolution path's upscale back to the stream's size, with its buffer kept between frames. */
  private readonly doubler = new Doubler();

  constructor(private readonly model: LoadedModel) {
    this.flowFactor = Math.max(1, model.manifest.latent.downscale / 2);
    this.cache = new LatentCache(this.flowFactor);
  }

  async restyle(req: StreamFrameRequest): Promise<StreamFrameResult> {
    const stages: StageTiming[] = [];
    // A new seed (or seed mix) is a new stream as far as the model is concerned: new noise, empty cache.
    const noiseWanted = new FixedNoise(req.seed, req.seedBlend);
    if (!this.noise || this.noise.key !== noiseWanted.key) {
      this.noise = noiseWanted;
      this.cache = new LatentCache(this.flowFactor);
    }
    const { noise, cache } = this;
    let input = req.image;
    if (req.scale === 0.5) {
      const start = nowMs();
      input = halve(input);
      stages.push({ name: 'preprocess', startMs: start, endMs: nowMs() });
    }
    // Temporal consistency works on full-size frames only; a half-size frame (deadline degradation)
    // neither uses nor replaces the cache, so the next full-size frame flows from the last one. At
    // consistency 0 nothing is computed or kept (it costs nothing); switching it on primes the cache
    // with one frame.
    if (req.consistency <= 0) cache.reset();
    const gray = req.scale === 1 && req.consistency > 0 ? cache.flowFrame(input, stages) : undefined;
    let guidance: TemporalGuidance | undefined;
    const result = await img2img(
      this.model,
      input,
      {
        steps: req.steps,
        strength: req.strength,
        conditioning: await this.model.condition(req.style, req.prompt, stages),
        noise,
        guidance: gray ? (dims, st) => (guidance = cache.guide(gray, dims, req.consistency, st)) : undefined,
      },
      stages,
    );
    let out = result.image;
    if (gray) {
      const graph = this.model.imageBlend;
      if (graph) out = await cache.blendImageWith(graph, out, guidance, stages);
      else cache.blendImage(out, guidance, stages);
      cache.commit(gray, result.outputLatent, result.dims, out); // the cache keeps a copy
    }
    if (req.scale === 0.5) {
      const start = nowMs();
      out = this.doubler.double(out);
      stages.push({ name: 'postprocess', startMs: start, endMs: nowMs() });
    }
    return { image: out, stages };
  }
}
