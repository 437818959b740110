// The img2img pipeline, one frame: RGB → VAE encode → noise to t0 → denoise ×steps → VAE decode → RGB.
// Read top to bottom like a diffusers pipeline; the math lives in ./scheduler.ts, the tensors in
// ./diffusion-components.ts. Each stage is timed with nowMs() so the engine can see where the frame went.
import type { RgbImage, StageName, StageTiming } from '../frame/video-frame.js';
import { nowMs } from '../frame/clock.js';
import type { DiffusionComponents, Latent } from './diffusion-components.js';
import type { ConditioningEmbeds } from './conditioning.js';
import type { ModelManifest } from './manifest.js';
import { float16ToFloat32, float32ToFloat16 } from './float16.js';
import type { FloatTensorData as PixelTensorData, FloatTensorType as PixelTensorType } from './onnx-component.js';
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

export class ImageSizeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageSizeError';
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
  const pixels = await timed('preprocess', () => rgbToTensor(image, manifest, encoder.pixelType));
  const encoded = await timed('vae_encode', () => encoder.encode(pixels, image.width, image.height));

  const sf = manifest.latent.scalingFactor;
  const inputLatent = encoded.data.map((v) => v * sf);
  const guidance = opts.guidance?.(encoded.dims, stages);
  let outputLatent = inputLatent;
  const latent = await timed('denoise', async () => {
    const x0 = inputLatent.slice();
    const noise = opts.noise.get(x0.length);
    const timesteps = streamTimesteps(opts.steps, opts.strength, manifest.scheduler.numTrainTimesteps);
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
    outputLatent = x0.slice();
    for (let i = 0; i < x0.length; i++) x0[i] = x0[i]! / sf;
    return { data: x0, dims: encoded.dims };
  });

  const decoded = await timed('vae_decode', () => decoder.decode(latent));
  const output = await timed('postprocess', () => tensorToRgb(decoded.data, decoded.width, decoded.height, manifest));
  return { image: output, dims: encoded.dims, outputLatent };
}


/**
 * Packed RGB24 → NCHW [1,3,H,W] in the model's pixel range, in the VAE encoder's own element type. A float16 encoder
 * gets its half bits straight from a 256-entry table (the same bits as converting the float32 values), so the frame
 * is walked once: at 512×512 a separate float32 → float16 pass cost as much again.
 */
export function rgbToTensor(image: RgbImage, manifest: ModelManifest, type: 'float16'): Uint16Array;
export function rgbToTensor(image: RgbImage, manifest: ModelManifest, type?: 'float32'): Float32Array;
export function rgbToTensor(image: RgbImage, manifest: ModelManifest, type?: PixelTensorType): PixelTensorData;
export function rgbToTensor(image: RgbImage, manifest: ModelManifest, type: PixelTensorType = 'float32'): PixelTensorData {
  const { width, height, data } = image;
  if (data.length !== width * height * 3)
    throw new ImageSizeError(`image data has ${data.length} bytes; ${width}×${height} RGB needs ${width * height * 3}`);
  const m = manifest.sizeMultiple;
  if (width % m !== 0 || height % m !== 0) throw new ImageSizeError(`image ${width}×${height} is not a multiple of ${m}`);
  const [lo, hi] = manifest.pixelRange;
  const levels = new Float32Array(256);
  for (let v = 0; v < 256; v++) levels[v] = lo + v * ((hi - lo) / 255);
  const table = type === 'float16' ? float32ToFloat16(levels) : levels;
  const plane = width * height;
  const out = type === 'float16' ? new Uint16Array(3 * plane) : new Float32Array(3 * plane);
  for (let p = 0, i = 0; p < plane; p++, i += 3) {
    out[p] = table[data[i]!]!;
    out[plane + p] = table[data[i + 1]!]!;
    out[2 * plane + p] = table[data[i + 2]!]!;
  }
  return out;
}

/** Half bits → output byte for one pixel range: [lo, hi] as a key. */
const halfToByteTables = new Map<string, Uint8Array>();

function halfToByteTable(lo: number, hi: number): Uint8Array {
  const key = `${lo},${hi}`;
  let table = halfToByteTables.get(key);
  if (!table) {
    const halves = float16ToFloat32(Uint16Array.from({ length: 0x10000 }, (_, b) => b));
    const bytes = new Uint8ClampedArray(0x10000);
    for (let b = 0; b < 0x10000; b++) bytes[b] = (halves[b]! - lo) * (255 / (hi - lo));
    table = new Uint8Array(bytes.buffer);
    halfToByteTables.set(key, table);
  }
  return table;
}

/**
 * NCHW [1,3,H,W] in the pixel range → packed RGB24 (clamped, rounded half to even, NaN → 0). A float16 decoder's half
 * bits map to bytes through a 65,536-entry table, without a float32 copy of the frame.
 */
export function tensorToRgb(tensor: PixelTensorData, width: number, height: number, manifest: ModelManifest): RgbImage {
  const [lo, hi] = manifest.pixelRange;
  const plane = width * height;
  const data = new Uint8Array(plane * 3);
  if (tensor instanceof Uint16Array) {
    const table = halfToByteTable(lo, hi);
    for (let p = 0, i = 0; p < plane; p++, i += 3) {
      data[i] = table[tensor[p]!]!;
      data[i + 1] = table[tensor[plane + p]!]!;
      data[i + 2] = table[tensor[2 * plane + p]!]!;
    }
    return { width, height, data };
  }
  const scale = 255 / (hi - lo);
  // A clamped view rounds (half to even), clamps to 0..255 and maps NaN to 0 in the store itself.
  const out = new Uint8ClampedArray(data.buffer);
  for (let p = 0, i = 0; p < plane; p++, i += 3) {
    out[i] = (tensor[p]! - lo) * scale;
    out[i + 1] = (tensor[plane + p]! - lo) * scale;
    out[i + 2] = (tensor[2 * plane + p]! - lo) * scale;
  }
  return { width, height, data };
}
