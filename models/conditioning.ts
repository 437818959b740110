// Conditioning vectors for the denoiser: named style embeddings (style models), linear blends between
// two of them (smooth style transitions), and a neutral (zero) embedding for a text model exported
// without its text encoder. Prompts are encoded by ./text-encoder.ts.
import type { ModelManifest } from './manifest.js';

/**
 * What one denoiser run is conditioned on, as diffusers names them prompt_embeds and pooled_prompt_embeds.
 * Every family has the sequence; only SDXL has the pooled vector, so it travels with the sequence it
 * was encoded with (one cache entry, one blend) and cannot drift out of step with it.
 */
export interface ConditioningEmbeds {
  /** encoder_hidden_states: [tokens × dim] flattened, or one [dim] row that every token repeats. */
  context: Float32Array;
  /** SDXL's text_embeds: text_encoder_2's projected pooled (EOS) state, [dim]. Absent: the UNet gets zeros. */
  pooled?: Float32Array;
}

export interface StyleBlend {
  from: string;
  to: string;
  /** 0 → `from`, 1 → `to`. */
  t: number;
}

export class UnknownStyleError extends Error {
  constructor(style: string, known: readonly string[]) {
    super(`unknown style "${style}" (available: ${known.join(', ') || 'none'})`);
    this.name = 'UnknownStyleError';
  }
}

export function blendEmbeddings(a: Float32Array, b: Float32Array, t: number, out: Float32Array = new Float32Array(a.length)): Float32Array {
  if (a.length !== b.length) throw new Error(`cannot blend embeddings of ${a.length} and ${b.length} values`);
  const k = Math.min(1, Math.max(0, t));
  for (let i = 0; i < a.length; i++) out[i] = a[i]! + (b[i]! - a[i]!) * k;
  return out;
}

export class ConditioningTable {
  private readonly styles = new Map<string, Float32Array>();
  private neutral: ConditioningEmbeds | undefined;

  constructor(private readonly manifest: ModelManifest) {
    if (manifest.conditioning.kind === 'styles') for (const s of manifest.conditioning.styles) this.styles.set(s.id, s.embedding);
  }

  get styleIds(): string[] {
    return [...this.styles.keys()];
  }

  /**
   * The embedding for a request: a style id or a blend (style models), or a zero embedding of
   * `tokens × dim` (a text model without a text encoder; an SDXL UNet's text_embeds then get zeros too).
   */
  embedding(style: string | StyleBlend, tokens: number, dim: number): ConditioningEmbeds {
    if (this.manifest.conditioning.kind === 'text') {
      if (!this.neutral || this.neutral.context.length !== tokens * dim) this.neutral = { context: new Float32Array(tokens * dim) };
      return this.neutral;
    }
    if (typeof style === 'string') return { context: this.lookup(style === '' ? this.manifest.defaults.style : style) };
    return { context: blendEmbeddings(this.lookup(style.from), this.lookup(style.to), style.t) };
  }

  private lookup(id: string): Float32Array {
    const e = this.styles.get(id);
    if (!e) throw new UnknownStyleError(id, this.styleIds);
    return e;
  }
}
