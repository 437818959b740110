// The text side of a text-conditioned model: CLIP tokens → the text encoder's last hidden state, the
// denoiser's encoder_hidden_states. A prompt is encoded once and cached (a live stream sends the same
// prompt every frame); blends of prompts are weighted interpolations of their cached embeddings.
import ort from 'onnxruntime-node';
import { ClipTokenizer } from './clip-tokenizer.js';
import type { ModelManifest } from './manifest.js';
import { ModelComponentError, OnnxComponent, readFloat, type SessionConfig, type TensorSpec } from './onnx-component.js';

/** How many distinct prompts' embeddings a worker keeps (each is 77 × 1024 floats at most: 315 KB). */
const CACHE_SIZE = 32;

export class TextEncoder {
  private readonly ids: TensorSpec;
  private readonly out: TensorSpec;
  private readonly cache = new Map<string, Float32Array>();

  private constructor(
    private readonly component: OnnxComponent,
    readonly tokenizer: ClipTokenizer,
  ) {
    this.ids = component.require('input', ['input_ids'], 0);
    this.out = component.require('output', ['last_hidden_state', 'hidden_states', 'text_embeds'], 0);
  }

  static async load(manifest: ModelManifest, config: SessionConfig): Promise<TextEncoder> {
    const { text_encoder, tokenizer } = manifest.components;
    if (!text_encoder || !tokenizer) throw new ModelComponentError(`${manifest.dir}: a text-conditioned model needs text_encoder/ and tokenizer/`);
    return new TextEncoder(await OnnxComponent.load(text_encoder, config), ClipTokenizer.load(tokenizer));
  }

  /** The prompt's embedding [tokens × dim] (flattened), from the cache when it was seen recently. */
  async embed(prompt: string): Promise<Float32Array> {
    const hit = this.cache.get(prompt);
    if (hit) {
      // Refresh its place: the map's insertion order is the eviction order.
      this.cache.delete(prompt);
      this.cache.set(prompt, hit);
      return hit;
    }
    const ids = this.tokenizer.encode(prompt);
    const tensor =
      this.ids.type === 'int64'
        ? new ort.Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [1, ids.length])
        : new ort.Tensor('int32', ids, [1, ids.length]);
    const res = await this.component.run({ [this.ids.name]: tensor }, [this.out]);
    const embedding = readFloat(res[this.out.name]!).slice();
    this.cache.set(prompt, embedding);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    return embedding;
  }

  /** Runs of the text encoder so far (cache misses): for tests and stats. */
  get cachedPrompts(): number {
    return this.cache.size;
  }

  release(): Promise<void> {
    return this.component.release();
  }
}

/** A weighted mix of prompts' embeddings: Σ wᵢ·eᵢ / Σ wᵢ (weights need not sum to 1; all ≥ 0). */
export async function blendPrompts(encoder: TextEncoder, parts: ReadonlyArray<{ prompt: string; weight: number }>): Promise<Float32Array> {
  const total = parts.reduce((s, p) => s + Math.max(0, p.weight), 0);
  if (parts.length === 0 || !(total > 0)) throw new RangeError('a prompt blend needs at least one prompt with a positive weight');
  let out: Float32Array | undefined;
  for (const part of parts) {
    const w = Math.max(0, part.weight) / total;
    if (w === 0) continue;
    const e = await encoder.embed(part.prompt);
    out ??= new Float32Array(e.length);
    for (let i = 0; i < e.length; i++) out[i] += w * e[i]!;
  }
  return out!;
}
