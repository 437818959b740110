// What temporal consistency does with a flow field: the forward–backward occlusion check, resampling
// the field to another grid (the latent's), and warping planar tensors (a latent, an image) along it.
import { type FlowField, type GrayImage, sampleBilinear } from './optical-flow.js';

/**
 * Validity of `backward` (current → previous) at each pixel of the current frame: 1 where the
 * forward–backward check passes (the pixel was visible in the previous frame), 0 where it fails or
 * points outside the frame. The rule (Sundaram et al. 2010, as used by Ruder et al. 2016):
 *   |b + f(x+b)|² > 0.01 (|b|² + |f(x+b)|²) + 0.5  →  occluded.
 */
export function occlusionMask(backward: FlowField, forward: FlowField): Float32Array {
  const { width: w, height: h } = backward;
  if (forward.width !== w || forward.height !== h) throw new RangeError('forward and backward flow must share a grid');
  const fu = new Float32Array(w * h);
  const fv = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) {
    fu[i] = forward.data[2 * i]!;
    fv[i] = forward.data[2 * i + 1]!;
  }
  const mask = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const bu = backward.data[2 * i]!;
      const bv = backward.data[2 * i + 1]!;
      const sx = x + bu;
      const sy = y + bv;
      if (sx < -0.5 || sy < -0.5 || sx > w - 0.5 || sy > h - 0.5) continue;
      const u = sampleBilinear(fu, w, h, sx, sy);
      const v = sampleBilinear(fv, w, h, sx, sy);
      const du = bu + u;
      const dv = bv + v;
      if (du * du + dv * dv <= 0.01 * (bu * bu + bv * bv + u * u + v * v) + 0.5) mask[i] = 1;
    }
  }
  return mask;
}

/**
 * Brightness constancy along `backward`: 1 where the previous frame, warped into the current one,
 * matches it within `threshold` grey levels. At this grid a patch-based flow smears an object's
 * motion a few pixels into the background around it, consistently in both directions, so the
 * forward–backward check alone passes there; the background an object uncovers still fails this test
 * (the warped previous frame shows the object there). Pixels where both pass are safe to reuse.
 */
export function photometricMask(current: GrayImage, previous: GrayImage, backward: FlowField, threshold = PHOTOMETRIC_THRESHOLD): Float32Array {
  const { width: w, height: h } = current;
  const mask = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const warped = sampleBilinear(previous.data, w, h, x + backward.data[2 * i]!, y + backward.data[2 * i + 1]!);
      if (Math.abs(warped - current.data[i]!) <= threshold) mask[i] = 1;
    }
  }
  return mask;
}

/** Grey levels (0–255) on the flow grid; camera noise there is a few levels after 4×4 averaging. */
export const PHOTOMETRIC_THRESHOLD = 12;

/** Area-average a flow field down to (width, height) (an integer factor), scaling the vectors to match. */
export function downsampleFlow(flow: FlowField, width: number, height: number): FlowField {
  const fx = flow.width / width;
  const fy = flow.height / height;
  if (!Number.isInteger(fx) || !Number.isInteger(fy)) throw new RangeError(`cannot downsample ${flow.width}×${flow.height} flow to ${width}×${height}`);
  const out = new Float32Array(width * height * 2);
  const norm = 1 / (fx * fy);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let u = 0;
      let v = 0;
      for (let j = 0; j < fy; j++) {
        for (let i = 0; i < fx; i++) {
          const s = 2 * ((y * fy + j) * flow.width + x * fx + i);
          u += flow.data[s]!;
          v += flow.data[s + 1]!;
        }
      }
      out[2 * (y * width + x)] = (u * norm) / fx;
      out[2 * (y * width + x) + 1] = (v * norm) / fy;
    }
  }
  return { width, height, data: out };
}

/** Area-average a mask (or any plane) down by an integer factor. */
export function downsamplePlane(plane: Float32Array, width: number, height: number, factor: number): Float32Array {
  const w = Math.floor(width / factor);
  const h = Math.floor(height / factor);
  const out = new Float32Array(w * h);
  const norm = 1 / (factor * factor);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let j = 0; j < factor; j++) for (let i = 0; i < factor; i++) s += plane[(y * factor + j) * width + x * factor + i]!;
      out[y * w + x] = s * norm;
    }
  }
  return out;
}

/**
 * Backward-warp planar data (C planes of flow.width × flow.height, e.g. a latent [1,C,H,W]):
 * out(x) = src(x + flow(x)), bilinear, clamped at the border.
 */
export function warpPlanes(src: Float32Array, channels: number, flow: FlowField, out = new Float32Array(src.length)): Float32Array {
  const { width: w, height: h } = flow;
  const plane = w * h;
  if (src.length !== channels * plane) throw new RangeError(`warp: ${src.length} values is not ${channels}×${w}×${h}`);
  for (let c = 0; c < channels; c++) {
    const view = src.subarray(c * plane, (c + 1) * plane);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        out[c * plane + i] = sampleBilinear(view, w, h, x + flow.data[2 * i]!, y + flow.data[2 * i + 1]!);
      }
    }
  }
  return out;
}

/** Backward-warp packed RGB24 along a flow on the same grid (bilinear, rounded). */
export function warpRgb(rgb: { width: number; height: number; data: Uint8Array }, flow: FlowField): Uint8Array {
  const { width: w, height: h } = rgb;
  if (flow.width !== w || flow.height !== h) throw new RangeError('warpRgb: flow and image sizes differ');
  const planes = new Float32Array(3 * w * h);
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) planes[c * w * h + i] = rgb.data[3 * i + c]!;
  const warped = warpPlanes(planes, 3, flow);
  const out = new Uint8ClampedArray(3 * w * h);
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) out[3 * i + c] = warped[c * w * h + i]!;
  return new Uint8Array(out.buffer);
}

/** Mean end-point error, over the pixels where `mask` (if given) is non-zero. */
export function endPointError(flow: FlowField, truth: FlowField, mask?: Float32Array): number {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < flow.width * flow.height; i++) {
    if (mask && !mask[i]) continue;
    sum += Math.hypot(flow.data[2 * i]! - truth.data[2 * i]!, flow.data[2 * i + 1]! - truth.data[2 * i + 1]!);
    count++;
  }
  return count ? sum / count : NaN;
}
