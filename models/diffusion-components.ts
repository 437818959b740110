// The three roles of a latent diffusion model (VAE encoder, denoiser, VAE decoder) over OnnxComponent.
// Each maps its role's tensors by name with positional fallbacks, feeds them in the declared types and
// ranks, and speaks plain Float32Array latents (scaled: the denoiser's space) and RGB24 frames to the pipeline.
// The VAE runs wrapped in pixel graphs (./pixel-graphs.ts) where the model allows, else converts on the host.
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { nowMs } from '../frame/clock.js';
import type { RgbImage, StageName, StageTiming } from '../frame/video-frame.js';
import type { ConditioningEmbeds } from './conditioning.js';
import type { ModelManifest } from './manifest.js';
import type { SessionConfig, TensorSpec } from './onnx-component.js';
import type { FloatTensorData, FloatTensorType } from './onnx-component.js';
import {
  dimOr,
  floatTensor,
  floatTypeOf,
  ModelComponentError,
  OnnxComponent,
  readFloat,
  readFloatData,
  scalarTensor,
} from './onnx-component.js';
import { OnnxProtoError } from './onnx-protobuf.js';
import {
  denoiserStepGraph,
  IMAGE_INPUT,
  IMAGE_OUTPUT,
  imageDecoderGraph,
  imageEncoderGraph,
  LATENT_INPUT,
  LATENT_OUTPUT,
  PixelGraphError,
  STEP_NOISE,
  STEP_NOISE_SCALES,
  STEP_X0,
  STEP_X0_ESTIMATE,
} from './pixel-graphs.js';
import { rgbToTensor, tensorToRgb } from './pixel-tensors.js';
import { guidanceScaleEmbedding, LCM_GUIDANCE_SCALE } from './scheduler.js';

export interface Latent {
  data: Float32Array;
  /** [1, C, h, w] */
  dims: [number, number, number, number];
}

/** A latent in the denoiser's space (scaled by the manifest's scaling factor), as both VAE paths speak it. */
export interface ImageEncoder {
  /** True where the pixel conversion runs inside the model's graph (./pixel-graphs.ts), not on the host. */
  readonly inGraph: boolean;
  /** RGB24 frame → the scaled latent mean [1, C, h, w]; times its own stages. */
  encode(image: RgbImage, stages: StageTiming[]): Promise<Latent>;
}

export interface ImageDecoder {
  readonly inGraph: boolean;
  /** Scaled latent [1, C, h, w] → RGB24 frame; times its own stages. */
  decode(latent: Latent, stages: StageTiming[]): Promise<RgbImage>;
}

function timed<T>(stages: StageTiming[], name: StageName, fn: () => T): T {
  const startMs = nowMs();
  const result = fn();
  stages.push({ name, startMs, endMs: nowMs() });
  return result;
}

async function timedRun<T>(stages: StageTiming[], name: StageName, fn: () => Promise<T>): Promise<T> {
  const startMs = nowMs();
  const result = await fn();
  stages.push({ name, startMs, endMs: nowMs() });
  return result;
}

/** The model folder's vae_encoder fed from the host: RGB → NCHW float in the pixel range here, scaling here. */
export class HostVaeEncoder implements ImageEncoder {
  readonly inGraph = false;
  private readonly in: TensorSpec;
  private readonly out: TensorSpec;
  /** The element type the encoder takes its image in, so preprocessing can write it directly. */
  readonly pixelType: FloatTensorType;
  constructor(
    readonly component: OnnxComponent,
    private readonly manifest: ModelManifest,
  ) {
    this.in = component.require('input', ENCODER_INPUTS, 0);
    this.out = component.require('output', ENCODER_OUTPUTS, 0);
    this.pixelType = floatTypeOf(this.in);
  }

  async encode(image: RgbImage, stages: StageTiming[]): Promise<Latent> {
    const { width, height } = image;
    const pixels = timed(stages, 'preprocess', () => rgbToTensor(image, this.manifest, this.pixelType));
    const t = await timedRun(stages, 'vae_encode', async () => {
      const res = await this.component.run({ [this.in.name]: floatTensor(this.in, pixels, [1, 3, height, width]) }, [this.out]);
      return res[this.out.name]!;
    });
    const [, c, h, w] = t.dims as number[];
    const channels = this.manifest.latent.channels;
    // latent_parameters holds [mean; logvar] along channels: the first `channels` are the mean.
    if (c! < channels) throw new ModelComponentError(`vae_encoder produced ${c} channels; the manifest says ${channels}`);
    const sf = this.manifest.latent.scalingFactor;
    const data = readFloat(t);
    const n = channels * h! * w!;
    const scaled = new Float32Array(n);
    for (let i = 0; i < n; i++) scaled[i] = data[i]! * sf;
    return { data: scaled, dims: [1, channels, h!, w!] };
  }
}

/** The model folder's vae_decoder read back on the host: unscaling, clamping and NCHW → RGB24 here. */
export class HostVaeDecoder implements ImageDecoder {
  readonly inGraph = false;
  private readonly in: TensorSpec;
  private readonly out: TensorSpec;
  constructor(
    readonly component: OnnxComponent,
    private readonly manifest: ModelManifest,
  ) {
    this.in = component.require('input', DECODER_INPUTS, 0);
    this.out = component.require('output', DECODER_OUTPUTS, 0);
  }

  async decode(latent: Latent, stages: StageTiming[]): Promise<RgbImage> {
    const t = await timedRun(stages, 'vae_decode', async () => {
      const sf = this.manifest.latent.scalingFactor;
      const unscaled = latent.data.map((v) => v / sf);
      const res = await this.component.run({ [this.in.name]: floatTensor(this.in, unscaled, latent.dims) }, [this.out]);
      return res[this.out.name]!;
    });
    const [, , height, width] = t.dims as number[];
    return timed(stages, 'postprocess', () => tensorToRgb(readFloatData(t), width!, height!, this.manifest));
  }
}

/** The vae_encoder wrapped in its pixel graph: the frame's bytes go in as they are, the scaled latent comes out. */
export class GraphVaeEncoder implements ImageEncoder {
  readonly inGraph = true;
  constructor(
    readonly component: OnnxComponent,
    private readonly channels: number,
  ) {}

  async encode(image: RgbImage, stages: StageTiming[]): Promise<Latent> {
    const t = await timedRun(stages, 'vae_encode', async () => {
      const feed = new ort.Tensor('uint8', image.data, [1, image.height, image.width, 3]);
      return (await this.component.session.run({ [IMAGE_INPUT]: feed }, [LATENT_OUTPUT]))[LATENT_OUTPUT]!;
    });
    const [, c, h, w] = t.dims as number[];
    if (c !== this.channels) throw new ModelComponentError(`vae_encoder produced ${c} channels; the manifest says ${this.channels}`);
    return { data: t.data as Float32Array, dims: [1, c, h!, w!] };
  }
}

export class GraphVaeDecoder implements ImageDecoder {
  readonly inGraph = true;
  constructor(readonly component: OnnxComponent) {}

  async decode(latent: Latent, stages: StageTiming[]): Promise<RgbImage> {
    const t = await timedRun(stages, 'vae_decode', async () => {
      const feed = new ort.Tensor('float32', latent.data, latent.dims);
      return (await this.component.session.run({ [LATENT_INPUT]: feed }, [IMAGE_OUTPUT]))[IMAGE_OUTPUT]!;
    });
    const [, height, width] = t.dims as number[];
    return { width: width!, height: height!, data: t.data as Uint8Array };
  }
}

const ENCODER_INPUTS = ['sample', 'pixel_values', 'images'];
const ENCODER_OUTPUTS = ['latent_parameters', 'latent_sample', 'latent_dist', 'latents'];
const DECODER_INPUTS = ['latent_sample', 'latents', 'z'];
const DECODER_OUTPUTS = ['sample', 'images'];

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

  /**
   * @param inGraph the component is the UNet wrapped in its step graph (models/pixel-graphs.ts denoiserStepGraph):
   * x0Estimate() runs a whole step there. Its x0 input stands where the UNet's sample was, so the other inputs are
   * matched by name and position as they are in the plain UNet.
   */
  constructor(
    readonly component: OnnxComponent,
    fallback: { tokens: number; dim: number },
    readonly inGraph = false,
  ) {
    const view = inGraph ? component.inputs.filter((s) => s.name !== STEP_NOISE && s.name !== STEP_NOISE_SCALES) : component.inputs;
    const input = (names: readonly string[], position: number): TensorSpec => {
      const spec = names.map((n) => view.find((s) => s.name === n)).find((s) => s) ?? view[position];
      if (!spec)
        throw new ModelComponentError(
          `${component.path}: no input named ${names.join(' or ')} (has: ${view.map((s) => s.name).join(', ')})`,
        );
      return spec;
    };
    this.sample = input(inGraph ? [STEP_X0] : ['sample', 'latent_model_input', 'x'], 0);
    this.timestep = input(['timestep', 't', 'timesteps'], 1);
    this.context = input(['encoder_hidden_states', 'context', 'cond'], 2);
    this.out = component.require('output', inGraph ? [STEP_X0_ESTIMATE] : ['out_sample', 'noise_pred', 'sample'], 0);
    const mapped = new Set([this.sample.name, this.timestep.name, this.context.name]);
    this.extras = view.filter((s) => !mapped.has(s.name));
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

  /**
   * One denoising step in the step graph: x0 noised to timestep t with `noise` (ᾱ = alphaBar), the UNet, and the
   * x0 estimate from its prediction, all on the execution provider; float32 in and out.
   */
  async x0Estimate(x0: Latent, noise: Float32Array, alphaBar: number, t: number, conditioning: ConditioningEmbeds): Promise<Float32Array> {
    if (!this.inGraph) throw new ModelComponentError(`${this.component.path}: x0Estimate needs the denoiser's step graph`);
    const n = x0.data.length;
    const feeds: Record<string, ort.Tensor> = {
      [STEP_X0]: new ort.Tensor('float32', x0.data, x0.dims),
      [STEP_NOISE]: new ort.Tensor('float32', noise.length === n ? noise : noise.subarray(0, n), x0.dims),
      [STEP_NOISE_SCALES]: new ort.Tensor('float32', Float32Array.of(Math.sqrt(alphaBar), Math.sqrt(1 - alphaBar)), [2]),
      [this.timestep.name]: scalarTensor(this.timestep, t),
      [this.context.name]: floatTensor(this.context, this.expandContext(conditioning.context), [1, this.contextTokens, this.contextDim]),
    };
    for (const e of this.extras) feeds[e.name] = this.extraInput(e, x0, conditioning.pooled);
    const res = await this.component.run(feeds, [this.out]);
    return res[this.out.name]!.data as Float32Array;
  }

  private expandContext(context: Float32Array): Float32Array {
    const n = this.contextTokens * this.contextDim;
    if (context.length === n) return context;
    if (context.length !== this.contextDim)
      throw new ModelComponentError(
        `conditioning has ${context.length} values; the denoiser wants [${this.contextTokens}, ${this.contextDim}]`,
      );
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
        throw new ModelComponentError(
          `the pooled text embedding has ${pooled.length} values; the denoiser's text_embeds wants [1, ${declared}]`,
        );
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
  encoder: ImageEncoder;
  denoiser: Denoiser;
  decoder: ImageDecoder;
  /** The provider the sessions actually run on (after any CPU fallback). */
  provider: SessionConfig['provider'];
  release(): Promise<void>;
}

export interface ComponentsConfig extends SessionConfig {
  /**
   * Wrap the VAE in pixel graphs (default true): uint8 frames in and out, the conversions on the execution
   * provider. false, or a model that cannot be wrapped (logged once), converts on the host.
   */
  pixelGraphs?: boolean;
}

export async function loadComponents(manifest: ModelManifest, config: ComponentsConfig): Promise<DiffusionComponents> {
  const wrap = config.pixelGraphs ?? true;
  const { pixelRange, latent } = manifest;
  const graphOptions = { pixelRange, scalingFactor: latent.scalingFactor, channels: latent.channels };
  const encGraph = wrap ? pixelGraph(manifest.components.vae_encoder, (b) => imageEncoderGraph(b, graphOptions), config) : undefined;
  const enc = await OnnxComponent.load(manifest.components.vae_encoder, config, encGraph);
  // Once one session had to fall back, load the rest on CPU directly rather than logging three times.
  const rest = { ...config, provider: enc.provider };
  const stepOptions = { predictionType: manifest.scheduler.predictionType, channels: latent.channels };
  const denGraph = wrap ? pixelGraph(manifest.components.denoiser, (b) => denoiserStepGraph(b, stepOptions), config) : undefined;
  const den = await OnnxComponent.load(manifest.components.denoiser, rest, denGraph);
  const decGraph = wrap ? pixelGraph(manifest.components.vae_decoder, (b) => imageDecoderGraph(b, graphOptions), config) : undefined;
  const dec = await OnnxComponent.load(manifest.components.vae_decoder, rest, decGraph);
  // Where the export leaves the conditioning dims symbolic: one style token, or CLIP's 77 × 768.
  const c = manifest.conditioning;
  const fallback = c.kind === 'styles' ? { tokens: 1, dim: c.dim } : { tokens: 77, dim: manifest.textHiddenSize ?? 768 };
  return {
    encoder: encGraph ? new GraphVaeEncoder(enc, latent.channels) : new HostVaeEncoder(enc, manifest),
    denoiser: new Denoiser(den, fallback, denGraph !== undefined),
    decoder: decGraph ? new GraphVaeDecoder(dec) : new HostVaeDecoder(dec, manifest),
    provider: dec.provider,
    release: async () => {
      await Promise.all([enc.release(), den.release(), dec.release()]);
    },
  };
}

/**
 * The wrapped model's bytes, or undefined (logged) where the file cannot be wrapped: the model then runs as it is,
 * with the conversions around it on the host. Any failure falls back (a file too large to copy in memory as well).
 */
function pixelGraph(path: string, build: (bytes: Uint8Array) => Uint8Array, config: SessionConfig): Uint8Array | undefined {
  try {
    return build(readFileSync(path));
  } catch (err) {
    const why =
      err instanceof PixelGraphError || err instanceof OnnxProtoError ? err.message : `${(err as Error).message} (wrapping it failed)`;
    config.logger?.warn(`${path}: the conversions around it stay on the host: ${why}`);
    return undefined;
  }
}
