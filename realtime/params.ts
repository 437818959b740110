// Live, per-session parameters: what the user can change mid-stream (HTTP PATCH or DataChannel).
// Parsed and validated here, at the edge; everything downstream trusts a SessionParams.
import type { PromptPart, SeedPart } from '../models/restyle-types.js';

export interface SessionParams {
  /** Named style of a style-conditioned model (the embedded default model). */
  style: string;
  /** Text prompt for text-conditioned models (SD-Turbo class); ignored by style models. */
  prompt: string;
  /** img2img strength, 0..1: how far into the noise schedule the input is pushed. */
  strength: number;
  /** Denoising steps, 1..4. */
  steps: number;
  /** Seed of the stream's fixed noise tensor. */
  seed: number;
  /** Temporal consistency (flow-guided reuse of the previous output), 0..1; 0 = independent frames. */
  consistency: number;
  /** Reuse the previous output when the input barely changed. */
  similarityFilter: boolean;
  /** Text models: a weighted mix of prompts instead of `prompt` (null or absent: use `prompt`). */
  promptBlend?: PromptPart[] | null;
  /** A weighted mix of seeds' noise instead of `seed` (null or absent: use `seed`). */
  seedBlend?: SeedPart[] | null;
}

export type { PromptPart, SeedPart };

/** At most this many parts in a blend: each prompt is a text-encoder run (cached) and each seed a noise tensor. */
export const MAX_BLEND_PARTS = 4;

export type ParamsPatch = Partial<SessionParams>;

export class ParamsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParamsError';
  }
}

/** What the loaded model accepts; the validator checks values against it. */
export interface ParamsLimits {
  styles: readonly string[];
  steps: readonly number[];
}

const KEYS: ReadonlySet<string> = new Set([
  'style',
  'prompt',
  'strength',
  'steps',
  'seed',
  'consistency',
  'similarityFilter',
  'promptBlend',
  'seedBlend',
]);

/**
 * Validate an untrusted JSON value as a patch. Throws ParamsError with a message naming the field and
 * the accepted values, so the HTTP layer can answer 400 with it verbatim.
 */
export function parseParamsPatch(input: unknown, limits: ParamsLimits): ParamsPatch {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ParamsError('parameters must be a JSON object');
  }
  const patch: ParamsPatch = {};
  for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
    if (!KEYS.has(key)) {
      throw new ParamsError(`unknown parameter "${key}"; known: ${[...KEYS].join(', ')}`);
    }
    switch (key) {
      case 'style':
        if (typeof value !== 'string' || !limits.styles.includes(value)) {
          throw new ParamsError(`style must be one of: ${limits.styles.join(', ') || '(model has no named styles)'}`);
        }
        patch.style = value;
        break;
      case 'prompt':
        if (typeof value !== 'string' || value.length > 1000) {
          throw new ParamsError('prompt must be a string of at most 1000 characters');
        }
        patch.prompt = value;
        break;
      case 'strength':
        patch.strength = unitInterval(key, value);
        break;
      case 'consistency':
        patch.consistency = unitInterval(key, value);
        break;
      case 'steps':
        if (typeof value !== 'number' || !Number.isInteger(value) || !limits.steps.includes(value)) {
          throw new ParamsError(`steps must be one of: ${limits.steps.join(', ')}`);
        }
        patch.steps = value;
        break;
      case 'seed':
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
          throw new ParamsError('seed must be an integer from 0 to 4294967295');
        }
        patch.seed = value;
        break;
      case 'similarityFilter':
        if (typeof value !== 'boolean') throw new ParamsError('similarityFilter must be true or false');
        patch.similarityFilter = value;
        break;
      case 'promptBlend':
        patch.promptBlend =
          value === null
            ? null
            : blendParts(key, value, 'prompt', (v) => typeof v === 'string' && v.length <= 1000, 'a string of at most 1000 characters').map(
                (p) => ({ prompt: p.item as string, weight: p.weight }),
              );
        break;
      case 'seedBlend':
        patch.seedBlend =
          value === null
            ? null
            : blendParts(
                key,
                value,
                'seed',
                (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff,
                'an integer from 0 to 4294967295',
              ).map((p) => ({ seed: p.item as number, weight: p.weight }));
        break;
    }
  }
  return patch;
}

function unitInterval(key: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new ParamsError(`${key} must be a number from 0 to 1`);
  }
  return value;
}

/** A blend: 1..MAX_BLEND_PARTS objects {<what>: value, weight ≥ 0}, at least one weight positive. */
function blendParts(
  key: string,
  value: unknown,
  what: 'prompt' | 'seed',
  valid: (v: unknown) => boolean,
  expected: string,
): Array<{ item: unknown; weight: number }> {
  const shape = `${key} must be null or a list of 1 to ${MAX_BLEND_PARTS} objects {"${what}": …, "weight": ≥ 0}`;
  if (!Array.isArray(value) || value.length < 1 || value.length > MAX_BLEND_PARTS) throw new ParamsError(shape);
  const parts = value.map((part: unknown) => {
    if (typeof part !== 'object' || part === null || Array.isArray(part)) throw new ParamsError(shape);
    const { [what]: item, weight, ...rest } = part as Record<string, unknown>;
    if (Object.keys(rest).length > 0) throw new ParamsError(`${shape}; unexpected ${Object.keys(rest).join(', ')}`);
    if (!valid(item)) throw new ParamsError(`${key}: each ${what} must be ${expected}`);
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0 || weight > 1000)
      throw new ParamsError(`${key}: each weight must be a number from 0 to 1000`);
    return { item, weight };
  });
  if (!parts.some((p) => p.weight > 0)) throw new ParamsError(`${key}: at least one weight must be positive`);
  return parts;
}
