// How much did the input change? A small luminance thumbnail per frame and a distance between two of
// them: cheap enough for the main thread (one pass over the frame, about 0.4 ms at 320×256 here) and blind to
// codec noise that a per-pixel comparison would count as change.
import type { RgbImage } from '../frame/video-frame.js';

export const THUMB_WIDTH = 40;
export const THUMB_HEIGHT = 32;

/** Box-averaged luminance at THUMB_WIDTH × THUMB_HEIGHT. */
export function thumbnail(image: RgbImage): Float32Array {
  const { width, height, data } = image;
  const out = new Float32Array(THUMB_WIDTH * THUMB_HEIGHT);
  const counts = new Uint32Array(out.length);
  // Which thumbnail column each image column falls in, computed once rather than per pixel.
  const column = new Uint8Array(width);
  for (let x = 0; x < width; x++) column[x] = Math.min(THUMB_WIDTH - 1, Math.floor((x * THUMB_WIDTH) / width));
  for (let y = 0, i = 0; y < height; y++) {
    const row = Math.min(THUMB_HEIGHT - 1, Math.floor((y * THUMB_HEIGHT) / height)) * THUMB_WIDTH;
    for (let x = 0; x < width; x++, i += 3) {
      const t = row + column[x]!;
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
