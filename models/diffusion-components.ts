// The three roles of a latent diffusion model (VAE encoder, denoiser, VAE decoder) over OnnxComponent.
// Each maps its role's tensors by name with positional fallbacks, feeds them in the declared types and
// ranks, and speaks plain Float32Array latents to the pipeline.
import ort from 'onnxruntime-node';
import type { ConditioningEmbeds } from './conditioning.js';
import type { ModelManifest } from './manifest.js';
import type { SessionConfig, TensorSpec } from './onnx-component.js';
import type { FloatTensorData, FloatTensorType } from './onnx-component.js';
import { dimOr, floatTensor, floatTypeOf, ModelComponentError, OnnxComponent, readFloat, readFloatData, scalarTensor } from './onnx-component.js';
import { guidanceScaleEmbedding, LCM_GUIDANCE_SCALE } from './scheduler.js';

export interface Latent {
  data: Float32Array;
  /** [1, C, h, w] */
  dims: [number, number, number, number];
}

export class VaeEncoder {
  private readonly in: TensorSpec;
  private readonly out: TensorSpec;
  /** The element type the encoder takes its image in, so preprocessing can write it directly. */
  readonly pixelType: FloatTensorType;
  constructor(readonly component: OnnxComponent, private readonly channels: number) {
    this.in = component.require('input', ['sample', 'pixel_values', 'images'], 0);
    this.out = component.require('output', ['latent_parameters', 'latent_sample', 'latent_dist', 'latents'], 0);
    this.pixelType = floatTypeOf(this.in);
  }

  /** pixels [1,3,H,W] in the model's pixel range → the latent mean [1,C,h,w] (unscaled). */
  async encode(pixels: FloatTensorData, width: number, height: number): Promise<Latent> {
    const res = await this.component.run({ [this.in.name]: floatTensor(this.in, pixels, [1, 3, height, width]) }, [this.out]);
    const t = res[this.out.name]!;
    const [, c, h, w] = t.dims as number[];
    const data = readFloat(t);
    // latent_parameters holds [mean; logvar] along channels: the first `channels` are the mean.
    if (c! < this.channels) throw new ModelComponentError(`vae_encoder produced ${c} channels; the manifest says ${this.channels}`);
    const n = this.channels * h! * w!;
    return { data: c === this.channels ? data : data.slice(0, n), dims: [1, this.channels, h!, w!] };
  }
}

export class VaeDecoder {
  private readonly in: TensorSpec;
  private readonly out: TensorSpec;
  constructor(readonly component: OnnxComponent) {
    this.in = component.require('input', ['latent_sample', 'latents', 'z'], 0);
    this.out = component.require('output', ['sample', 'images'], 0);
  }

  /** latent [1,C,h,w] (unscaled) → pixels [1,3,H,W] in the model's pixel range, in the decoder's own float type. */
  async decode(latent: Latent): Promise<{ data: FloatTensorData; width: number; height: number }> {
    const res = await this.component.run({ [this.in.name]: floatTensor(this.in, latent.data, latent.dims) }, [this.out]);
    const t = res[this.out.name]!;
    const [, , height, width] = t.dims as number[];
    return { data: readFloatData(t), width: width!, height: height! };
  }
}

const KNOWN_DENOISER_INPUTS = new Set(['sample', 'timestep', 'encoder_hidden_states', 'timestep_cond', 'text_embeds', 'time_ids']);

/** SDXL's pooled text embedding width (text_encoder_2's projection), where the export leaves it symbolic. */
const SDXL_POOLED_DIM = 1280;

export class Denoiser {
  private readonly sample: TensorSpec;
  private readonly timestep: TensorSpec;
  private readonly context: TensorSpec;
  private readonly out: TensorSpec;
  private readonly extras: TensorSpec[];
  /** Conditioning shape the model wants: [1, tokens, dim]. */
  readonly contextTokens: number;
  readonly contextDim: number;
  /** SDXL UNets: the width of the pooled text embedding their `text_embeds` input takes; others: undefined. */
  readonly pooledDim: number | undefined;

  constructor(readonly component: OnnxComponent, fallback: { tokens: number; dim: number }) {
    this.sample = component.require('input', ['sample', 'latent_model_input', 'x'], 0);
    this.timestep = component.require('input', ['timestep', 't', 'timesteps'], 1);
    this.context = component.require('input', ['encoder_hidden_states', 'context', 'cond'], 2);
    this.out = component.require('output', ['out_sample', 'noise_pred', 'sample'], 0);
    const mapped = new Set([this.sample.name, this.timestep.name, this.context.name]);
    this.extras = component.inputs.filter((s) => !mapped.has(s.name));
    for (const e of this.extras) {
      if (!KNOWN_DENOISER_INPUTS.has(e.name))
        throw new ModelComponentError(`${component.path}: denoiser input "${e.name}" is not one this runtime knows how to feed`);
    }
    this.contextTokens = dimOr(this.context, 1, fallback.tokens);
    this.contextDim = dimOr(this.context, 2, fallback.dim);
    const pooled = this.extras.find((e) => e.name === 'text_embeds');
    this.pooledDim = pooled ? dimOr(pooled, 1, SDXL_POOLED_DIM) : undefined;
  }

  /** One model evaluation at integer timestep t. The context is [tokens·dim] or one [dim] row, repeated. */
  async predict(x: Latent, t: number, conditioning: ConditioningEmbeds): Promise<Float32Array> {
    const ctx = this.expandContext(conditioning.context);
    const feeds: Record<string, ort.Tensor> = {
      [this.sample.name]: floatTensor(this.sample, x.data, x.dims),
      [this.timestep.name]: scalarTensor(this.timestep, t),
      [this.context.name]: floatTensor(this.context, ctx, [1, this.contextTokens, this.contextDim]),
    };
    for (const e of this.extras) feeds[e.name] = this.extraInput(e, x, conditioning.pooled);
    const res = await this.component.run(feeds, [this.out]);
    return readFloat(res[this.out.name]!);
  }

  private expandContext(context: Float32Array): Float32Array {
    const n = this.contextTokens * this.contextDim;
    if (context.length === n) return context;
    if (context.length !== this.contextDim)
      throw new ModelComponentError(`conditioning has ${context.length} values; the denoiser wants [${this.contextTokens}, ${this.contextDim}]`);
    const out = new Float32Array(n);
    for (let i = 0; i < this.contextTokens; i++) out.set(context, i * this.contextDim);
    return out;
  }

  // SDXL/LCM extras. time_ids describe the image size (original, crop offset, target) as SDXL expects;
  // timestep_cond is LCM's guidance-scale embedding; text_embeds is SDXL's pooled prompt embedding, zeros
  // when there is none (no text_encoder_2, which TextEncoder.load has logged once).
  private extraInput(spec: TensorSpec, x: Latent, pooled: Float32Array | undefined): ort.Tensor {
    if (spec.name === 'text_embeds') {
      if (!pooled) return floatTensor(spec, new Float32Array(this.pooledDim!), [1, this.pooledDim!]);
      const declared = dimOr(spec, 1, 0);
      if (declared > 0 && pooled.length !== declared)
        throw new ModelComponentError(`the pooled text embedding has ${pooled.length} values; the denoiser's text_embeds wants [1, ${declared}]`);
      return floatTensor(spec, pooled, [1, pooled.length]);
    }
    if (spec.name === 'timestep_cond') {
      const dim = dimOr(spec, 1, 256);
      return floatTensor(spec, guidanceScaleEmbedding(LCM_GUIDANCE_SCALE, dim), [1, dim]);
    }
    if (spec.name === 'time_ids') {
      const h = x.dims[2] * 8;
      const w = x.dims[3] * 8;
      return floatTensor(spec, Float32Array.from([h, w, 0, 0, h, w]), [1, 6]);
    }
    throw new ModelComponentError(`${this.component.path}: no feed for denoiser input "${spec.name}"`);
  }
}

export interface DiffusionComponents {
  encoder: VaeEncoder;
  denoiser: Denoiser;
  decoder: VaeDecoder;
  /** The provider the sessions actually run on (after any CPU fallback). */
  provider: SessionConfig['provider'];
  release(): Promise<void>;
}

export async function loadComponents(manifest: ModelManifest, config: SessionConfig): Promise<DiffusionComponents> {
  const enc = await OnnxComponent.load(manifest.components.vae_encoder, config);
  // Once one session had to fall back, load the rest on CPU directly rather than logging three times.
  const rest = { ...config, provider: enc.provider };
  const den = await OnnxComponent.load(manifest.components.denoiser, rest);
  const dec = await OnnxComponent.load(manifest.components.vae_decoder, rest);
  // Where the export leaves the conditioning dims symbolic: one style token, or CLIP's 77 × 768.
  const c = manifest.conditioning;
  const fallback = c.kind === 'styles' ? { tokens: 1, dim: c.dim } : { tokens: 77, dim: manifest.textHiddenSize ?? 768 };
  return {
    encoder: new VaeEncoder(enc, manifest.latent.channels),
    denoiser: new Denoiser(den, fallback),
    decoder: new VaeDecoder(dec),
    provider: dec.provider,
    release: async () => {
      await Promise.all([enc.release(), den.release(), dec.release()]);
    },
  };
}
