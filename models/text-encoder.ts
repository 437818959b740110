// The text side of a text-conditioned model: a prompt → what the denoiser is conditioned on. SD 1.x/2.x
// (and SD-Turbo): one CLIP encoder's last hidden state. SDXL (and SDXL-Turbo), as diffusers does it: both
// encoders' penultimate hidden states side by side along the feature axis (text_encoder's, then
// text_encoder_2's: [77, 768 + 1280]) and text_encoder_2's projected pooled state for the UNet's
// text_embeds. A prompt is encoded once and cached (a live stream sends the same prompt every frame);
// blends of prompts are weighted interpolations of their cached embeddings, pooled ones included.
import { ClipTextModel, type ClipTextOutput, type HiddenLayer } from './clip-text-model.js';
import type { ConditioningEmbeds } from './conditioning.js';
import type { ModelManifest } from './manifest.js';
import { ModelComponentError, type SessionConfig } from './onnx-component.js';

/** How many distinct prompts' embeddings a worker keeps (SDXL's are 77 × 2048 + 1280 floats: 636 KB). */
const CACHE_SIZE = 32;

/** What the denoiser takes from the text side (see Denoiser): its context row width and pooled width. */
export interface DenoiserTextInputs {
  contextDim: number;
  /** Defined for SDXL UNets, which take a pooled `text_embeds` input. */
  pooledDim: number | undefined;
}

export class TextEncoder {
  private readonly cache = new Map<string, ConditioningEmbeds>();

  private constructor(
    /** In the order their hidden states concatenate. */
    private readonly encoders: readonly ClipTextModel[],
    /** The encoder whose text_embeds is the pooled embedding (SDXL's text_encoder_2). */
    private readonly pooledFrom: ClipTextModel | undefined,
    /**
     * SDXL without text_encoder_2: each token row is padded with zeros to this width, text_encoder_2's share
     * of the context, as its text_embeds are zeros. Undefined: rows are exactly the encoders' outputs.
     */
    private readonly padRowsTo: number | undefined,
  ) {}

  /**
   * Loads the folder's text encoders, each with its own tokenizer (they may pad differently). `denoiser`
   * says whether the UNet is SDXL's; without it, a folder with text_encoder_2 is taken to be SDXL.
   */
  static async load(manifest: ModelManifest, config: SessionConfig, denoiser?: DenoiserTextInputs): Promise<TextEncoder> {
    const { text_encoder, tokenizer, text_encoder_2, tokenizer_2 } = manifest.components;
    const hasFirst = text_encoder !== undefined && tokenizer !== undefined;
    const hasSecond = text_encoder_2 !== undefined && tokenizer_2 !== undefined;
    if (!hasFirst && !hasSecond)
      throw new ModelComponentError(`${manifest.dir}: a text-conditioned model needs text_encoder/ and tokenizer/`);
    const sdxl = hasSecond || denoiser?.pooledDim !== undefined;
    const layer: HiddenLayer = sdxl ? 'penultimate' : 'last';
    const first = hasFirst ? await ClipTextModel.load(text_encoder, tokenizer, layer, config) : undefined;
    const second = hasSecond ? await ClipTextModel.load(text_encoder_2, tokenizer_2, layer, config) : undefined;
    const warn = (message: string): void => config.logger?.warn(message);
    let padRowsTo: number | undefined;
    if (denoiser?.pooledDim !== undefined && !second) {
      warn(
        `${manifest.dir}: the UNet takes SDXL's pooled text_embeds but the folder has no text_encoder_2/ with tokenizer_2/; ` +
          `text_embeds and text_encoder_2's share of the prompt embedding are zeros, so prompts only half-condition it`,
      );
      padRowsTo = denoiser.contextDim;
    } else if (denoiser?.pooledDim !== undefined && second && !second.hasPooled) {
      warn(`${text_encoder_2}: no text_embeds output (SDXL's pooled prompt embedding); the UNet's text_embeds get zeros`);
    }
    return new TextEncoder(
      [first, second].filter((e) => e !== undefined),
      second?.hasPooled ? second : undefined,
      padRowsTo,
    );
  }

  /** The prompt's embeddings (context [tokens × dim] flattened, and pooled for SDXL), cached per prompt. */
  async embed(prompt: string): Promise<ConditioningEmbeds> {
    const hit = this.cache.get(prompt);
    if (hit) {
      // Refresh its place: the map's insertion order is the eviction order.
      this.cache.delete(prompt);
      this.cache.set(prompt, hit);
      return hit;
    }
    const outputs: ClipTextOutput[] = [];
    for (const encoder of this.encoders) outputs.push(await encoder.encode(prompt));
    const pooled = this.pooledFrom ? outputs[this.encoders.indexOf(this.pooledFrom)]!.pooled : undefined;
    const embeds: ConditioningEmbeds = { context: concatRows(outputs, this.padRowsTo), ...(pooled ? { pooled } : {}) };
    this.cache.set(prompt, embeds);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    return embeds;
  }

  /** Distinct prompts currently cached (each was one run of the encoders): for tests and stats. */
  get cachedPrompts(): number {
    return this.cache.size;
  }

  async release(): Promise<void> {
    await Promise.all(this.encoders.map((e) => e.release()));
  }
}

/** Token by token, the encoders' rows side by side (then zeros up to `width`): [tokens × Σ dim]. */
function concatRows(outputs: readonly ClipTextOutput[], width?: number): Float32Array {
  if (outputs.length === 1 && width === undefined) return outputs[0]!.hidden;
  const tokens = outputs[0]!.tokens;
  const mismatch = outputs.find((o) => o.tokens !== tokens);
  if (mismatch)
    throw new ModelComponentError(`the text encoders give ${tokens} and ${mismatch.tokens} tokens; they must agree to be concatenated`);
  const row = Math.max(
    outputs.reduce((s, o) => s + o.dim, 0),
    width ?? 0,
  );
  const out = new Float32Array(tokens * row);
  for (let t = 0; t < tokens; t++) {
    let at = t * row;
    for (const o of outputs) {
      out.set(o.hidden.subarray(t * o.dim, (t + 1) * o.dim), at);
      at += o.dim;
    }
  }
  return out;
}

/**
 * A weighted mix of prompts' embeddings: Σ wᵢ·eᵢ / Σ wᵢ (weights need not sum to 1; all ≥ 0), for the
 * context and the pooled embedding alike, so a prompt change fades both together.
 */
export async function blendPrompts(
  encoder: TextEncoder,
  parts: ReadonlyArray<{ prompt: string; weight: number }>,
): Promise<ConditioningEmbeds> {
  const total = parts.reduce((s, p) => s + Math.max(0, p.weight), 0);
  if (parts.length === 0 || !(total > 0)) throw new RangeError('a prompt blend needs at least one prompt with a positive weight');
  let context: Float32Array | undefined;
  let pooled: Float32Array | undefined;
  for (const part of parts) {
    const w = Math.max(0, part.weight) / total;
    if (w === 0) continue;
    const e = await encoder.embed(part.prompt);
    context = addScaled(context, e.context, w);
    if (e.pooled) pooled = addScaled(pooled, e.pooled, w);
  }
  return pooled ? { context: context!, pooled } : { context: context! };
}

function addScaled(into: Float32Array | undefined, e: Float32Array, w: number): Float32Array {
  const out = into ?? new Float32Array(e.length);
  for (let i = 0; i < e.length; i++) out[i] += w * e[i]!;
  return out;
}
