// Host-side conversion between packed RGB24 frames and the VAE's NCHW float tensors in the model's pixel range:
// the path for models that cannot be wrapped in pixel graphs (./pixel-graphs.ts), and the reference those
// graphs are tested against.
import type { RgbImage } from '../frame/video-frame.js';
import type { ModelManifest } from './manifest.js';
import { float16ToFloat32, float32ToFloat16 } from './float16.js';
import type { FloatTensorData as PixelTensorData, FloatTensorType as PixelTensorType } from './onnx-component.js';

export class ImageSizeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageSizeError';
  }
}

/** The frame must be packed RGB24 of its stated size, in the model's size multiple. */
export function checkImage(image: RgbImage, manifest: ModelManifest): void {
  const { width, height, data } = image;
  if (data.length !== width * height * 3)
    throw new ImageSizeError(`image data has ${data.length} bytes; ${width}×${height} RGB needs ${width * height * 3}`);
  const m = manifest.sizeMultiple;
  if (width % m !== 0 || height % m !== 0) throw new ImageSizeError(`image ${width}×${height} is not a multiple of ${m}`);
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
  checkImage(image, manifest);
  const { width, height, data } = image;
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
