// What temporal consistency does with a flow field: the forward–backward occlusion check, resampling
// the field to another grid (the latent's), and warping planar tensors (a latent, an image) along it.
// Each takes an optional `out`, so a stream can keep its buffers from frame to frame.
import { type FlowField, type GrayImage, sampleBilinear } from './optical-flow.js';

/**
 * Validity of `backward` (current → previous) at each pixel of the current frame: 1 where the
 * forward–backward check passes (the pixel was visible in the previous frame), 0 where it fails or
 * points outside the frame. The rule (Sundaram et al. 2010, as used by Ruder et al. 2016):
 *   |b + f(x+b)|² > 0.01 (|b|² + |f(x+b)|²) + 0.5  →  occluded.
 */
export function occlusionMask(backward: FlowField, forward: FlowField, out?: Float32Array): Float32Array {
  return checkFlow(backward, forward, undefined, undefined, 0, out);
}

/**
 * Brightness constancy along `backward`: 1 where the previous frame, warped into the current one,
 * matches it within `threshold` grey levels. At this grid a patch-based flow smears an object's
 * motion a few pixels into the background around it, consistently in both directions, so the
 * forward–backward check alone passes there; the background an object uncovers still fails this test
 * (the warped previous frame shows the object there). Pixels where both pass are safe to reuse.
 */
export function photometricMask(
  current: GrayImage,
  previous: GrayImage,
  backward: FlowField,
  threshold = PHOTOMETRIC_THRESHOLD,
  out?: Float32Array,
): Float32Array {
  const w = current.width | 0;
  const h = current.height | 0;
  const mask = out ?? new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const warped = sampleBilinear(previous.data, w, h, x + backward.data[2 * i]!, y + backward.data[2 * i + 1]!);
      mask[i] = Math.abs(warped - current.data[i]!) <= threshold ? 1 : 0;
    }
  }
  return mask;
}

/**
 * Where `backward` can be trusted: occlusionMask × photometricMask in one pass (both sample at the
 * same point, so they share its bilinear weights, and the forward flow is only read where the
 * photometric test passes). Bit for bit the product of the two.
 */
export function validityMask(
  current: GrayImage,
  previous: GrayImage,
  backward: FlowField,
  forward: FlowField,
  out?: Float32Array,
  threshold = PHOTOMETRIC_THRESHOLD,
): Float32Array {
  if (
    current.width !== backward.width ||
    current.height !== backward.height ||
    previous.width !== current.width ||
    previous.height !== current.height
  )
    throw new RangeError('frames and flow must share a grid');
  return checkFlow(backward, forward, current.data, previous.data, threshold, out);
}

/**
 * The forward–backward check, and with `cur`/`prev` the photometric one as well. Sampling is
 * sampleBilinear's (clamp to edge, the same arithmetic), inlined: the forward flow is read where it
 * lies, interleaved, instead of being copied into planes first.
 */
function checkFlow(
  backward: FlowField,
  forward: FlowField,
  cur: Float32Array | undefined,
  prev: Float32Array | undefined,
  threshold: number,
  out: Float32Array | undefined,
): Float32Array {
  // Sizes as int32 (`| 0`): one stored as a double would make every index computation below a double.
  const w = backward.width | 0;
  const h = backward.height | 0;
  if (forward.width !== w || forward.height !== h) throw new RangeError('forward and backward flow must share a grid');
  const mask = out ?? new Float32Array(w * h);
  const b = backward.data;
  const f = forward.data;
  const xMax = w - 1;
  const yMax = h - 1;
  const xLast = w - 2 < 0 ? 0 : w - 2;
  const yLast = h - 2 < 0 ? 0 : h - 2;
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i++) {
      mask[i] = 0;
      const bu = b[2 * i]!;
      const bv = b[2 * i + 1]!;
      const sx = x + bu;
      const sy = y + bv;
      if (sx < -0.5 || sy < -0.5 || sx > w - 0.5 || sy > h - 0.5) continue;
      const xc = sx < 0 ? 0 : sx > xMax ? xMax : sx;
      const yc = sy < 0 ? 0 : sy > yMax ? yMax : sy;
      let x0 = xc | 0; // non-negative: truncation is floor
      let y0 = yc | 0;
      if (x0 > xLast) x0 = xLast;
      if (y0 > yLast) y0 = yLast;
      const ax = xc - x0;
      const ay = yc - y0;
      const x1 = x0 + 1 > xMax ? xMax : x0 + 1;
      const y1 = y0 + 1 > yMax ? yMax : y0 + 1;
      const p00 = y0 * w + x0;
      const p01 = y0 * w + x1;
      const p10 = y1 * w + x0;
      const p11 = y1 * w + x1;
      if (cur && prev) {
        const top = prev[p00]! + (prev[p01]! - prev[p00]!) * ax;
        const bottom = prev[p10]! + (prev[p11]! - prev[p10]!) * ax;
        if (!(Math.abs(top + (bottom - top) * ay - cur[i]!) <= threshold)) continue;
      }
      const ut = f[2 * p00]! + (f[2 * p01]! - f[2 * p00]!) * ax;
      const ub = f[2 * p10]! + (f[2 * p11]! - f[2 * p10]!) * ax;
      const u = ut + (ub - ut) * ay;
      const vt = f[2 * p00 + 1]! + (f[2 * p01 + 1]! - f[2 * p00 + 1]!) * ax;
      const vb = f[2 * p10 + 1]! + (f[2 * p11 + 1]! - f[2 * p10 + 1]!) * ax;
      const v = vt + (vb - vt) * ay;
      const du = bu + u;
      const dv = bv + v;
      if (du * du + dv * dv <= 0.01 * (bu * bu + bv * bv + u * u + v * v) + 0.5) mask[i] = 1;
    }
  }
  return mask;
}

/** Grey levels (0–255) on the flow grid; camera noise there is a few levels after 4×4 averaging. */
export const PHOTOMETRIC_THRESHOLD = 12;

/** Area-average a flow field down to (width, height) (an integer factor), scaling the vectors to match. */
export function downsampleFlow(flow: FlowField, width: number, height: number, out?: FlowField): FlowField {
  if (!Number.isInteger(flow.width / width) || !Number.isInteger(flow.height / height))
    throw new RangeError(`cannot downsample ${flow.width}×${flow.height} flow to ${width}×${height}`);
  const fx = (flow.width / width) | 0;
  const fy = (flow.height / height) | 0;
  const from = flow.width | 0;
  const result = out && out.width === width && out.height === height ? out : { width, height, data: new Float32Array(width * height * 2) };
  const dst = result.data;
  const src = flow.data;
  const norm = 1 / (fx * fy);
  const w = width | 0;
  const h = height | 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let u = 0;
      let v = 0;
      for (let j = 0; j < fy; j++) {
        for (let i = 0, s = 2 * ((y * fy + j) * from + x * fx); i < fx; i++, s += 2) {
          u += src[s]!;
          v += src[s + 1]!;
        }
      }
      dst[2 * (y * w + x)] = (u * norm) / fx;
      dst[2 * (y * w + x) + 1] = (v * norm) / fy;
    }
  }
  return result;
}

/** Area-average a mask (or any plane) down by an integer factor (into `out` when given). */
export function downsamplePlane(plane: Float32Array, width: number, height: number, f: number, out?: Float32Array): Float32Array {
  if (!Number.isInteger(f) || f < 1) throw new RangeError(`downsample: the factor must be a positive integer, got ${f}`);
  const factor = f | 0;
  const w = Math.floor(width / factor) | 0;
  const h = Math.floor(height / factor) | 0;
  const result = out ?? new Float32Array(w * h);
  const norm = 1 / (factor * factor);
  const stride = width | 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let j = 0; j < factor; j++) for (let i = 0; i < factor; i++) s += plane[(y * factor + j) * stride + x * factor + i]!;
      result[y * w + x] = s * norm;
    }
  }
  return result;
}

/**
 * Backward-warp planar data (C planes of flow.width × flow.height, e.g. a latent [1,C,H,W]):
 * out(x) = src(x + flow(x)), bilinear, clamped at the border. sampleBilinear's arithmetic, with the
 * sample position and weights found once per pixel for all planes.
 */
export function warpPlanes(
  src: Float32Array,
  channels: number,
  flow: FlowField,
  out: Float32Array = new Float32Array(src.length),
): Float32Array {
  const w = flow.width | 0;
  const h = flow.height | 0;
  const plane = w * h;
  if (src.length !== channels * plane) throw new RangeError(`warp: ${src.length} values is not ${channels}×${w}×${h}`);
  const fd = flow.data;
  const xMax = w - 1;
  const yMax = h - 1;
  const xLast = w - 2 < 0 ? 0 : w - 2;
  const yLast = h - 2 < 0 ? 0 : h - 2;
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i++) {
      const sx = x + fd[2 * i]!;
      const sy = y + fd[2 * i + 1]!;
      const xc = sx < 0 ? 0 : sx > xMax ? xMax : sx;
      const yc = sy < 0 ? 0 : sy > yMax ? yMax : sy;
      let x0 = xc | 0; // non-negative: truncation is floor
      let y0 = yc | 0;
      if (x0 > xLast) x0 = xLast;
      if (y0 > yLast) y0 = yLast;
      const ax = xc - x0;
      const ay = yc - y0;
      const x1 = x0 + 1 > xMax ? xMax : x0 + 1;
      const y1 = y0 + 1 > yMax ? yMax : y0 + 1;
      const p00 = y0 * w + x0;
      const p01 = y0 * w + x1;
      const p10 = y1 * w + x0;
      const p11 = y1 * w + x1;
      for (let c = 0, o = 0; c < channels; c++, o += plane) {
        const top = src[o + p00]! + (src[o + p01]! - src[o + p00]!) * ax;
        const bottom = src[o + p10]! + (src[o + p11]! - src[o + p10]!) * ax;
        out[o + i] = top + (bottom - top) * ay;
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
