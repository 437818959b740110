// Halving and doubling RGB24 images for the deadline scheduler's lower-resolution path: the model runs
// at half size (a quarter of the pixels) and the result is brought back to the stream's size, so the
// encoder and the viewer never see a resolution change.
import type { RgbImage } from '../frame/video-frame.js';

/** 2×2 box filter: width and height must be even. */
export function halve(image: RgbImage): RgbImage {
  const { width: w, height: h, data } = image;
  const hw = w >> 1;
  const hh = h >> 1;
  const out = new Uint8Array(hw * hh * 3);
  for (let y = 0; y < hh; y++) {
    const r0 = 2 * y * w * 3;
    const r1 = r0 + w * 3;
    for (let x = 0; x < hw; x++) {
      const i = 2 * x * 3;
      const o = (y * hw + x) * 3;
      for (let c = 0; c < 3; c++) {
        out[o + c] = (data[r0 + i + c]! + data[r0 + i + 3 + c]! + data[r1 + i + c]! + data[r1 + i + 3 + c]! + 2) >> 2;
      }
    }
  }
  return { width: hw, height: hh, data: out };
}

/** Bilinear ×2 upsampling with pixel centres aligned (as most scalers do). */
export function double(image: RgbImage): RgbImage {
  const { width: w, height: h, data } = image;
  const W = w * 2;
  const H = h * 2;
  const out = new Uint8Array(W * H * 3);
  for (let Y = 0; Y < H; Y++) {
    const sy = Math.min(h - 1, Math.max(0, (Y + 0.5) / 2 - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(h - 1, y0 + 1);
    const fy = sy - y0;
    for (let X = 0; X < W; X++) {
      const sx = Math.min(w - 1, Math.max(0, (X + 0.5) / 2 - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(w - 1, x0 + 1);
      const fx = sx - x0;
      const o = (Y * W + X) * 3;
      for (let c = 0; c < 3; c++) {
        const a = data[(y0 * w + x0) * 3 + c]!;
        const b = data[(y0 * w + x1) * 3 + c]!;
        const d = data[(y1 * w + x0) * 3 + c]!;
        const e = data[(y1 * w + x1) * 3 + c]!;
        out[o + c] = Math.round((a * (1 - fx) + b * fx) * (1 - fy) + (d * (1 - fx) + e * fx) * fy);
      }
    }
  }
  return { width: W, height: H, data: out };
}
