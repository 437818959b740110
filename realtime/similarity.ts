// How much did the input change? A small luminance thumbnail per frame and a distance between two of
// them: cheap enough for the main thread (one pass over the frame, ~0.2 ms at 320×256) and blind to
// codec noise that a per-pixel comparison would count as change.
import type { RgbImage } from './frame.js';

export const THUMB_WIDTH = 40;
export const THUMB_HEIGHT = 32;

/** Box-averaged luminance at THUMB_WIDTH × THUMB_HEIGHT. */
export function thumbnail(image: RgbImage): Float32Array {
  const { width, height, data } = image;
  const out = new Float32Array(THUMB_WIDTH * THUMB_HEIGHT);
  const counts = new Uint16Array(out.length);
  for (let y = 0; y < height; y++) {
    const ty = Math.min(THUMB_HEIGHT - 1, Math.floor((y * THUMB_HEIGHT) / height));
    for (let x = 0; x < width; x++) {
      const tx = Math.min(THUMB_WIDTH - 1, Math.floor((x * THUMB_WIDTH) / width));
      const i = (y * width + x) * 3;
      const t = ty * THUMB_WIDTH + tx;
      out[t] += 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!;
      counts[t]!++;
    }
  }
  for (let t = 0; t < out.length; t++) out[t] = out[t]! / Math.max(1, counts[t]!);
  return out;
}

/**
 * Similarity in 0..1: 1 − mean absolute thumbnail difference / 25.5 (clamped), so identical frames are
 * 1, a still camera's sensor noise stays above ~0.95, and a 10%-of-range average change is 0.
 */
export function similarity(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return Math.max(0, 1 - sum / a.length / 25.5);
}
