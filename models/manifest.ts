// A model is a folder. This module reads one into a validated, typed ModelManifest: either the
// project's own manifest.json ("sds-model/1") or a diffusers/optimum ONNX export (model_index.json).
// Everything after loading trusts the manifest; every problem found here names the file and field.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BetaSchedule, PredictionType, SchedulerConfig, TimestepSpacing } from './scheduler.js';

export const MANIFEST_FORMAT = 'sds-model/1';

export class ModelLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelLoadError';
  }
}

export interface StyleEntry {
  id: string;
  label: string;
  embedding: Float32Array;
}

export type Conditioning = { kind: 'styles'; dim: number; styles: StyleEntry[] } | { kind: 'text' };

export interface ModelManifest {
  /** Absolute path of the model folder. */
  dir: string;
  /** Which layout it was read from. */
  layout: 'sds-model/1' | 'diffusers-onnx';
  name: string;
  description: string;
  /**
   * Absolute file paths (a tokenizer is a folder). SDXL has a second text encoder (CLIP bigG, with the
   * pooled projection) and its own tokenizer; each text encoder is used only with its tokenizer.
   */
  components: {
    vae_encoder: string;
    denoiser: string;
    vae_decoder: string;
    text_encoder?: string;
    tokenizer?: string;
    text_encoder_2?: string;
    tokenizer_2?: string;
  };
  latent: { channels: number; downscale: number; scalingFactor: number };
  pixelRange: [number, number];
  resolution: { width: number; height: number };
  resolutions: [number, number][];
  sizeMultiple: number;
  scheduler: SchedulerConfig;
  steps: number[];
  defaults: { steps: number; strength: number; style: string };
  conditioning: Conditioning;
  /** Text models: the text encoder's hidden size (unet cross_attention_dim), when the export says. */
  textHiddenSize?: number;
}

/** Read and validate the model folder `dir`. Throws ModelLoadError saying exactly what is missing or wrong. */
export function loadManifest(dir: string): ModelManifest {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new ModelLoadError(`model folder ${root} does not exist`);
  if (existsSync(join(root, 'manifest.json'))) return parseSdsManifest(root, readJson(join(root, 'manifest.json')));
  if (existsSync(join(root, 'model_index.json'))) return parseDiffusersFolder(root);
  throw new ModelLoadError(
    `${root} is not a model folder: it has neither manifest.json (format "${MANIFEST_FORMAT}") ` +
      `nor model_index.json (a diffusers/optimum ONNX export)`,
  );
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ModelLoadError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelLoadError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Field readers that report `file: path.to.field must be ...`. */
class Fields {
  constructor(private readonly file: string) {}
  fail(path: string, what: string): never {
    throw new ModelLoadError(`${this.file}: ${path} ${what}`);
  }
  get(obj: unknown, path: string): unknown {
    let cur: unknown = obj;
    for (const key of path.split('.')) {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
      cur = (cur as Record<string, unknown>)[key];
    }
    return cur;
  }
  object(obj: unknown, path: string): Record<string, unknown> {
    const v = this.get(obj, path);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(path, 'is missing or not an object');
    return v as Record<string, unknown>;
  }
  string(obj: unknown, path: string, fallback?: string): string {
    const v = this.get(obj, path);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'string' || v.length === 0) this.fail(path, 'must be a non-empty string');
    return v;
  }
  number(obj: unknown, path: string, check: (n: number) => boolean = () => true, what = 'a number'): number {
    const v = this.get(obj, path);
    if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) this.fail(path, `must be ${what}`);
    return v;
  }
  positiveInt(obj: unknown, path: string): number {
    return this.number(obj, path, (n) => Number.isInteger(n) && n > 0, 'a positive integer');
  }
  oneOf<T extends string>(obj: unknown, path: string, values: readonly T[], fallback?: T): T {
    const v = this.get(obj, path);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v))
      this.fail(path, `must be one of ${values.map((x) => `"${x}"`).join(', ')}`);
    return v as T;
  }
}

const BETA_SCHEDULES: readonly BetaSchedule[] = ['scaled_linear', 'linear'];
const PREDICTION_TYPES: readonly PredictionType[] = ['epsilon', 'v_prediction', 'sample'];
const SPACINGS: readonly TimestepSpacing[] = ['trailing', 'leading', 'linspace'];

function componentPath(root: string, f: Fields, rel: string, field: string): string {
  const abs = resolve(root, rel);
  if (!existsSync(abs)) f.fail(field, `names ${rel}, which does not exist in ${root}`);
  return abs;
}

export function parseSdsManifest(root: string, json: unknown): ModelManifest {
  const f = new Fields(join(root, 'manifest.json'));
  const format = f.get(json, 'format');
  if (format !== MANIFEST_FORMAT) f.fail('format', `must be "${MANIFEST_FORMAT}" (found ${JSON.stringify(format)})`);

  const comp = f.object(json, 'components');
  const components: ModelManifest['components'] = {
    vae_encoder: componentPath(root, f, f.string(comp, 'vae_encoder'), 'components.vae_encoder'),
    denoiser: componentPath(root, f, f.string(comp, 'denoiser'), 'components.denoiser'),
    vae_decoder: componentPath(root, f, f.string(comp, 'vae_decoder'), 'components.vae_decoder'),
  };
  for (const opt of ['text_encoder', 'tokenizer', 'text_encoder_2', 'tokenizer_2'] as const) {
    if (comp[opt] !== undefined) components[opt] = componentPath(root, f, f.string(comp, opt), `components.${opt}`);
  }

  const latent = {
    channels: f.positiveInt(json, 'latent.channels'),
    downscale: f.positiveInt(json, 'latent.downscale'),
    scalingFactor: f.number(json, 'latent.scalingFactor', (n) => n > 0, 'a positive number'),
  };
  const range = f.get(json, 'pixelRange') as number[];
  if (!Array.isArray(range) || range.length !== 2 || !range.every((n) => typeof n === 'number') || !(range[0] < range[1]))
    f.fail('pixelRange', 'must be [low, high] with low < high, e.g. [-1, 1]');
  const resolution = { width: f.positiveInt(json, 'resolution.width'), height: f.positiveInt(json, 'resolution.height') };
  const sizeMultiple = f.positiveInt(json, 'sizeMultiple');
  const resolutions = parseResolutions(f, f.get(json, 'resolutions') ?? [[resolution.width, resolution.height]]);

  const scheduler: SchedulerConfig = {
    betaSchedule: f.oneOf(json, 'scheduler.betaSchedule', BETA_SCHEDULES),
    betaStart: f.number(json, 'scheduler.betaStart', (n) => n > 0 && n < 1, 'in (0, 1)'),
    betaEnd: f.number(json, 'scheduler.betaEnd', (n) => n > 0 && n < 1, 'in (0, 1)'),
    numTrainTimesteps: f.positiveInt(json, 'scheduler.numTrainTimesteps'),
    predictionType: f.oneOf(json, 'scheduler.predictionType', PREDICTION_TYPES),
    timestepSpacing: f.oneOf(json, 'scheduler.timestepSpacing', SPACINGS, 'trailing'),
  };

  const stepsRaw = f.get(json, 'steps');
  if (!Array.isArray(stepsRaw) || stepsRaw.length === 0 || !stepsRaw.every((n) => Number.isInteger(n) && n > 0))
    f.fail('steps', 'must be a non-empty array of positive integers, e.g. [1, 2, 3, 4]');
  const steps = stepsRaw as number[];

  const conditioning = parseConditioning(f, f.object(json, 'conditioning'));
  const styleIds = conditioning.kind === 'styles' ? conditioning.styles.map((s) => s.id) : [];
  const defaults = {
    steps: f.positiveInt(json, 'defaults.steps'),
    strength: f.number(json, 'defaults.strength', (n) => n > 0 && n <= 1, 'in (0, 1]'),
    style: f.string(json, 'defaults.style', conditioning.kind === 'styles' ? undefined : ''),
  };
  if (!steps.includes(defaults.steps)) f.fail('defaults.steps', `must be one of steps [${steps.join(', ')}]`);
  if (conditioning.kind === 'styles' && !styleIds.includes(defaults.style))
    f.fail('defaults.style', `must be one of the styles (${styleIds.join(', ')})`);

  return {
    dir: root,
    layout: 'sds-model/1',
    name: f.string(json, 'name'),
    description: f.string(json, 'description', ''),
    components,
    latent,
    pixelRange: [range[0], range[1]],
    resolution,
    resolutions,
    sizeMultiple,
    scheduler,
    steps,
    defaults,
    conditioning,
  };
}

function parseResolutions(f: Fields, raw: unknown): [number, number][] {
  const ok = (r: unknown): r is [number, number] =>
    Array.isArray(r) && r.length === 2 && r.every((n) => Number.isInteger(n) && (n as number) > 0);
  if (!Array.isArray(raw) || raw.length === 0 || !raw.every(ok)) f.fail('resolutions', 'must be a non-empty array of [width, height]');
  return raw.map((r: [number, number]) => [r[0], r[1]]);
}

function parseConditioning(f: Fields, c: Record<string, unknown>): Conditioning {
  const kind = f.oneOf(c, 'kind', ['styles', 'text'] as const);
  if (kind === 'text') return { kind: 'text' };
  const dim = f.positiveInt(c, 'dim');
  const list = c.styles;
  if (!Array.isArray(list) || list.length === 0) f.fail('conditioning.styles', 'must be a non-empty array');
  const seen = new Set<string>();
  const styles = list.map((s: unknown, i: number): StyleEntry => {
    const at = `conditioning.styles[${i}]`;
    const id = f.get(s, 'id');
    if (typeof id !== 'string' || id === '') f.fail(`${at}.id`, 'must be a non-empty string');
    if (seen.has(id)) f.fail(`${at}.id`, `duplicates style "${id}"`);
    seen.add(id);
    const label = f.get(s, 'label');
    const emb = f.get(s, 'embedding');
    if (!Array.isArray(emb) || emb.length !== dim || !emb.every((n) => typeof n === 'number' && Number.isFinite(n)))
      f.fail(`${at}.embedding`, `must be ${dim} finite numbers (conditioning.dim)`);
    return { id, label: typeof label === 'string' ? label : id, embedding: Float32Array.from(emb as number[]) };
  });
  return { kind: 'styles', dim, styles };
}

/** A diffusers/optimum ONNX export: model_index.json + one folder per component. */
export function parseDiffusersFolder(root: string): ModelManifest {
  const required = ['unet/model.onnx', 'vae_encoder/model.onnx', 'vae_decoder/model.onnx', 'scheduler/scheduler_config.json'];
  const missing = required.filter((p) => !existsSync(join(root, p)));
  if (missing.length > 0)
    throw new ModelLoadError(`${root} has model_index.json (a diffusers ONNX export) but is missing: ${missing.join(', ')}`);

  const optional = (p: string): unknown => (existsSync(join(root, p)) ? readJson(join(root, p)) : {});
  const index = readJson(join(root, 'model_index.json'));
  const sched = readJson(join(root, 'scheduler/scheduler_config.json'));
  const unet = optional('unet/config.json');
  const vaeDec = optional('vae_decoder/config.json');
  const vaeEnc = optional('vae_encoder/config.json');
  const fs = new Fields(join(root, 'scheduler/scheduler_config.json'));
  const num = (o: unknown, k: string): number | undefined => {
    const v = (o as Record<string, unknown> | null)?.[k];
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  };

  const blocks = (vaeDec as Record<string, unknown>).block_out_channels;
  const downscale = Array.isArray(blocks) && blocks.length > 0 ? 2 ** (blocks.length - 1) : 8;
  const sampleSize = num(unet, 'sample_size');
  const side = sampleSize !== undefined ? sampleSize * downscale : 512;
  const components: ModelManifest['components'] = {
    vae_encoder: join(root, 'vae_encoder/model.onnx'),
    denoiser: join(root, 'unet/model.onnx'),
    vae_decoder: join(root, 'vae_decoder/model.onnx'),
  };
  for (const suffix of ['', '_2'] as const) {
    if (existsSync(join(root, `text_encoder${suffix}/model.onnx`)))
      components[`text_encoder${suffix}`] = join(root, `text_encoder${suffix}/model.onnx`);
    if (existsSync(join(root, `tokenizer${suffix}`))) components[`tokenizer${suffix}`] = join(root, `tokenizer${suffix}`);
  }
  const nameOf = (index as Record<string, unknown>)._name_or_path;

  return {
    dir: root,
    layout: 'diffusers-onnx',
    name: typeof nameOf === 'string' ? nameOf : root.split(/[\\/]/).pop() || 'model',
    description: `diffusers ONNX export (${String((index as Record<string, unknown>)._class_name ?? 'pipeline')})`,
    components,
    latent: {
      channels: num(vaeDec, 'latent_channels') ?? num(vaeEnc, 'latent_channels') ?? num(unet, 'in_channels') ?? 4,
      downscale,
      scalingFactor: num(vaeDec, 'scaling_factor') ?? num(vaeEnc, 'scaling_factor') ?? 0.18215,
    },
    pixelRange: [-1, 1],
    resolution: { width: side, height: side },
    resolutions: [[side, side]],
    sizeMultiple: downscale,
    scheduler: {
      betaSchedule: fs.oneOf(sched, 'beta_schedule', BETA_SCHEDULES, 'scaled_linear'),
      betaStart: num(sched, 'beta_start') ?? 0.00085,
      betaEnd: num(sched, 'beta_end') ?? 0.012,
      numTrainTimesteps: num(sched, 'num_train_timesteps') ?? 1000,
      predictionType: fs.oneOf(sched, 'prediction_type', PREDICTION_TYPES, 'epsilon'),
      timestepSpacing: fs.oneOf(sched, 'timestep_spacing', SPACINGS, 'trailing'),
    },
    steps: [1, 2, 3, 4],
    defaults: { steps: 1, strength: 0.5, style: '' },
    conditioning: { kind: 'text' },
    textHiddenSize: num(unet, 'cross_attention_dim'),
  };
}
