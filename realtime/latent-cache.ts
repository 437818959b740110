// A stream's latent cache and the temporal guidance it gives the next frame. It keeps the previous
// input (small and grey, for flow), the previous output latent and the previous output image; for a
// new frame it finds the flow back to the previous one, checks where that flow can be trusted
// (forward–backward and photometric checks), and warps the previous output latent into the new frame.
// The pipeline blends that into its x0 estimate, and after decoding the warped previous output image
// is blended in too, so what was painted on a surface stays on it as it moves, and content the mask
// calls new is restyled afresh. It runs on the inference worker that owns the stream: latents never
// cross threads. (The fixed per-stream noise lives beside it, models/img2img.ts FixedNoise; it stays
// fixed to the screen, not warped by the flow.)
import type { StageTiming } from '../frame/video-frame.js';
import { nowMs } from '../frame/clock.js';
import { downsampleFlow, downsamplePlane, validityMask, warpPlanes } from './flow-warp.js';
import { FlowEstimator, grayFromRgb, type FlowField, type FlowFrame, type GrayImage } from './optical-flow.js';
import type { RgbImage } from '../frame/video-frame.js';
import type { LatentDims, LatentGuidance } from '../models/latent-guidance.js';

/** What blends the warped previous output in elsewhere than this thread's loop (models/image-blend-graph.ts). */
export interface ImageBlender {
  blend(current: RgbImage, previous: RgbImage, flow: FlowField, mask: Float32Array, weight: number): Promise<RgbImage>;
}

/**
 * Blend weights at `consistency = 1` where the mask is fully valid (they scale linearly with it).
 * Both are below 1 so that every frame still contributes: the output tracks the input instead of
 * freezing, and an error in one warp fades geometrically instead of persisting. Two places, because
 * `sds bench quality` showed that neither alone is enough: guiding the x0 estimate in latent space
 * keeps the style's strokes on the surface they were painted on, but the decoder is not shift-
 * equivariant below a latent pixel (8 image pixels), so the decoded frames still shimmer; blending
 * the warped previous output image removes that. Measured on the default model (occluder clip,
 * 30 frames): latent alone −31 % warp error, image alone −38 %, both −43 % at −0.5 dB fidelity.
 */
export const LATENT_GUIDANCE_WEIGHT = 0.85;
export const IMAGE_BLEND_WEIGHT = 0.7;

/**
 * Guidance for one frame. Its arrays are the cache's workspace: valid until the cache's next guide()
 * (a stream runs one frame at a time, so the pipeline is done with them by then).
 */
export interface TemporalGuidance extends LatentGuidance {
  /** `warped`: the previous output latent warped into the current frame; `weight`: 0..LATENT_GUIDANCE_WEIGHT. */
  /** Fraction of latent pixels the mask accepted (for stats). */
  validFraction: number;
  /** The flow-grid backward flow and validity mask, for blending the previous output image. */
  gridFlow: FlowField;
  gridMask: Float32Array;
  consistency: number;
}

/** A grey flow frame and its pyramid, in buffers the cache reuses. */
interface FlowSlot {
  gray: GrayImage;
  frame: FlowFrame | undefined;
}

/**
 * A stream's working memory for temporal consistency: every buffer the per-frame path writes, kept
 * from frame to frame and reallocated only when the frame size (or latent layout) changes, so a
 * running stream allocates nothing per frame. GC pauses from the per-frame allocations were a main
 * source of the path's p95 latency (`sds bench consistency`).
 */
export interface ConsistencyWorkspace {
  /** This frame's and the previous frame's grey flow frames, used in turn. */
  readonly slots: readonly [FlowSlot, FlowSlot];
  /** Flow-grid buffers: backward (current → previous) and forward flow, and the validity mask. */
  readonly backward: FlowField;
  readonly forward: FlowField;
  readonly mask: Float32Array;
  /** Latent-grid buffers, for `latentDims`. */
  latentDims: number[];
  latentFlow: FlowField;
  valid: Float32Array;
  warped: Float32Array;
  weight: Float32Array;
  /** The previous output image (a copy: the caller's frame moves on). */
  image: RgbImage | undefined;
}

interface Previous {
  gray: GrayImage;
  image?: RgbImage;
  outputLatent: Float32Array;
  dims: LatentDims;
}

export class LatentCache {
  private previous: Previous | undefined;
  private readonly flow = new FlowEstimator();
  private work: ConsistencyWorkspace | undefined;

  /** @param flowFactor image pixels per flow-grid pixel (the VAE's reduction / 2: twice the latent grid). */
  constructor(readonly flowFactor: number) {}

  /** The buffers this cache reuses (for tests and inspection); undefined before the first frame. */
  get workspace(): Readonly<ConsistencyWorkspace> | undefined {
    return this.work;
  }

  /**
   * The small grey frame flow is computed on, with its pyramid (timed as part of the 'flow' stage).
   * It lives in the cache's workspace: valid until the next flowFrame() after it was committed.
   */
  flowFrame(image: RgbImage, stages: StageTiming[]): GrayImage {
    const start = nowMs();
    const work = this.gridWorkspace(Math.floor(image.width / this.flowFactor) | 0, Math.floor(image.height / this.flowFactor) | 0);
    // The slot the previous frame is not in.
    const slot = work.slots[0].gray === this.previous?.gray ? work.slots[1] : work.slots[0];
    grayFromRgb(image, this.flowFactor, slot.gray);
    slot.frame = this.flow.prepare(slot.gray, slot.frame);
    const end = nowMs();
    stages.push({ name: 'flow', startMs: start, endMs: end });
    return slot.gray;
  }

  get hasPrevious(): boolean {
    return this.previous !== undefined;
  }

  /**
   * Guidance for the frame `gray` (from flowFrame) whose latent has `dims`, or undefined when there is
   * nothing to guide with (no previous frame, another size, or consistency 0 — which must change nothing).
   */
  guide(gray: GrayImage, dims: LatentDims, consistency: number, stages: StageTiming[]): TemporalGuidance | undefined {
    const prev = this.previous;
    if (!(consistency > 0) || !prev || !sameDims(prev.dims, dims) || prev.gray.width !== gray.width || prev.gray.height !== gray.height)
      return undefined;
    const channels = dims[1]!;
    const lh = dims[2]!;
    const lw = dims[3]!;
    const flowStart = nowMs();
    const work = this.gridWorkspace(gray.width, gray.height);
    const current = this.flowFrameOf(gray);
    const before = this.flowFrameOf(prev.gray);
    this.flow.estimate(current, before, work.backward);
    this.flow.estimate(before, current, work.forward);
    validityMask(gray, prev.gray, work.backward, work.forward, work.mask);
    const warpStart = nowMs();
    this.latentWorkspace(work, dims);
    const factor = gray.width / lw;
    downsampleFlow(work.backward, lw, lh, work.latentFlow);
    const valid = downsamplePlane(work.mask, gray.width, gray.height, factor, work.valid);
    warpPlanes(prev.outputLatent, channels, work.latentFlow, work.warped);
    const weight = work.weight;
    const k = Math.min(1, consistency) * LATENT_GUIDANCE_WEIGHT;
    let validSum = 0;
    for (let i = 0; i < weight.length; i++) {
      weight[i] = k * valid[i]!;
      validSum += valid[i]!;
    }
    const warpEnd = nowMs();
    stages.push({ name: 'flow', startMs: flowStart, endMs: warpStart }, { name: 'warp', startMs: warpStart, endMs: warpEnd });
    return {
      warped: work.warped,
      weight,
      validFraction: validSum / weight.length,
      gridFlow: work.backward,
      gridMask: work.mask,
      consistency,
    };
  }

  /**
   * Remember this frame: its grey flow frame, the output latent it produced and its output image (the
   * cache keeps a copy of the image, in its workspace; the latent is kept as given).
   */
  commit(gray: GrayImage, outputLatent: Float32Array, dims: LatentDims, image?: RgbImage): void {
    const work = this.gridWorkspace(gray.width, gray.height);
    // The latent buffers for the next frame's guidance, now that the layout is known.
    this.latentWorkspace(work, dims);
    let kept: RgbImage | undefined;
    if (image) {
      if (!work.image || work.image.width !== image.width || work.image.height !== image.height)
        work.image = { width: image.width, height: image.height, data: new Uint8Array(image.data.length) };
      work.image.data.set(image.data);
      kept = work.image;
    }
    const sameLayout = this.previous !== undefined && sameDims(this.previous.dims, dims);
    this.previous = { gray, outputLatent, dims: sameLayout ? this.previous!.dims : [...dims], image: kept };
  }

  /** Blend the previous output image into `out` along the guidance's flow (in place). */
  blendImage(out: RgbImage, guidance: TemporalGuidance | undefined, stages: StageTiming[]): void {
    const prev = this.previous?.image;
    if (!guidance || !prev || prev.width !== out.width || prev.height !== out.height) return;
    const start = nowMs();
    blendWarpedImage(out, prev, guidance.gridFlow, guidance.gridMask, Math.min(1, guidance.consistency) * IMAGE_BLEND_WEIGHT);
    const end = nowMs();
    stages.push({ name: 'warp', startMs: start, endMs: end });
  }

  /** blendImage on another engine (a graph on the execution provider): gives the blended image, `out` untouched. */
  async blendImageWith(
    blender: ImageBlender,
    out: RgbImage,
    guidance: TemporalGuidance | undefined,
    stages: StageTiming[],
  ): Promise<RgbImage> {
    const prev = this.previous?.image;
    if (!guidance || !prev || prev.width !== out.width || prev.height !== out.height) return out;
    const start = nowMs();
    const blended = await blender.blend(
      out,
      prev,
      guidance.gridFlow,
      guidance.gridMask,
      Math.min(1, guidance.consistency) * IMAGE_BLEND_WEIGHT,
    );
    stages.push({ name: 'warp', startMs: start, endMs: nowMs() });
    return blended;
  }

  reset(): void {
    this.previous = undefined;
  }

  /** The workspace for a flow grid of width × height, reallocated when the grid changes. */
  private gridWorkspace(width: number, height: number): ConsistencyWorkspace {
    const w = this.work;
    if (w && w.mask.length === width * height && w.backward.width === width) return w;
    const gray = (): FlowSlot => ({ gray: { width, height, data: new Float32Array(width * height) }, frame: undefined });
    const field = (): FlowField => ({ width, height, data: new Float32Array(width * height * 2) });
    // A previous frame of the old size cannot be guided from (guide() checks sizes), so it may keep
    // its own buffers until it is replaced.
    this.work = {
      slots: [gray(), gray()],
      backward: field(),
      forward: field(),
      mask: new Float32Array(width * height),
      latentDims: [],
      latentFlow: { width: 0, height: 0, data: new Float32Array(0) },
      valid: new Float32Array(0),
      warped: new Float32Array(0),
      weight: new Float32Array(0),
      image: undefined,
    };
    return this.work;
  }

  private latentWorkspace(work: ConsistencyWorkspace, dims: LatentDims): void {
    if (sameDims(work.latentDims, dims)) return;
    const channels = dims[1]!;
    const lh = dims[2]!;
    const lw = dims[3]!;
    work.latentDims = [...dims];
    work.latentFlow = { width: lw, height: lh, data: new Float32Array(lw * lh * 2) };
    work.valid = new Float32Array(lw * lh);
    work.warped = new Float32Array(channels * lw * lh);
    work.weight = new Float32Array(lw * lh);
  }

  /** The prepared pyramid of a grey frame from flowFrame(), or one built now for any other. */
  private flowFrameOf(gray: GrayImage): FlowFrame {
    const slots = this.work?.slots;
    if (slots?.[0].gray === gray && slots[0].frame) return slots[0].frame;
    if (slots?.[1].gray === gray && slots[1].frame) return slots[1].frame;
    return this.flow.prepare(gray);
  }
}

function sameDims(a: LatentDims, b: LatentDims): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Blend the previous output image, warped along the grid flow, into the current output in place:
 * out = cur + w·(warp(prev) − cur), with w = weight × mask. The flow grid is an integer factor
 * coarser than the image and each grid cell's vector applies to its whole block of pixels: a
 * translated block shares one set of bilinear weights, which makes this about twice as fast as
 * interpolating the flow per pixel (0.8 ms at 320×256 in the worker here; still the costliest part
 * of consistency on a CPU, bound by its double-precision arithmetic: reading the image as 32-bit
 * words or with fixed-point weights measured no faster). An ONNX graph doing the same with
 * onnxruntime's Resize + GridSample was tried and was slower: 4.9 ms on one thread, 11.6 on two.
 */
export function blendWarpedImage(
  cur: RgbImage,
  prev: RgbImage,
  flow: { width: number; height: number; data: Float32Array },
  mask: Float32Array,
  weight: number,
): void {
  // Indices are kept int32 (`| 0`) throughout: a quotient, Math.floor or a size that was ever stored
  // as a double is a double to the JIT, and double index arithmetic costs a conversion and a check
  // on every pixel access.
  const w = cur.width | 0;
  const h = cur.height | 0;
  const fw = flow.width | 0;
  const fh = flow.height | 0;
  if (w % fw !== 0 || h % fh !== 0) throw new RangeError(`flow grid ${fw}×${fh} does not divide ${w}×${h}`);
  const bw = (w / fw) | 0;
  const bh = (h / fh) | 0;
  const c = cur.data;
  const p = prev.data;
  const fd = flow.data;
  const stride = 3 * w;
  for (let gy = 0; gy < fh; gy++) {
    for (let gx = 0; gx < fw; gx++) {
      const g = gy * fw + gx;
      const k = weight * mask[g]!;
      if (k <= 0) continue;
      const u = fd[2 * g]! * bw;
      const v = fd[2 * g + 1]! * bh;
      const fu = Math.floor(u);
      const fv = Math.floor(v);
      const bx = u - fu;
      const by = v - fv;
      const x0 = gx * bw;
      const y0 = gy * bh;
      const w00 = (1 - bx) * (1 - by);
      const w01 = bx * (1 - by);
      const w10 = (1 - bx) * by;
      const w11 = bx * by;
      if (x0 + fu >= 0 && y0 + fv >= 0 && x0 + fu + bw < w && y0 + fv + bh < h) {
        // Inside the previous image (almost every block): the source block is the destination block
        // shifted by (fu, fv). Walking a row, each pixel's right-hand taps are the next pixel's
        // left-hand ones, so they are read once (the arithmetic is unchanged).
        const shift = 3 * ((fv | 0) * w + (fu | 0)); // in range: the block is inside the image
        for (let j = 0; j < bh; j++) {
          let o = 3 * ((y0 + j) * w + x0);
          let a0 = o + shift;
          let b0 = a0 + stride;
          let ar = p[a0]!;
          let ag = p[a0 + 1]!;
          let ab = p[a0 + 2]!;
          let br = p[b0]!;
          let bg = p[b0 + 1]!;
          let bb = p[b0 + 2]!;
          for (const end = o + 3 * bw; o < end; o += 3, a0 += 3, b0 += 3) {
            const ar1 = p[a0 + 3]!;
            const ag1 = p[a0 + 4]!;
            const ab1 = p[a0 + 5]!;
            const br1 = p[b0 + 3]!;
            const bg1 = p[b0 + 4]!;
            const bb1 = p[b0 + 5]!;
            // R, G, B unrolled. Both ends of the blend are in 0..255, so the result is: round, no clamp.
            const r = w00 * ar + w01 * ar1 + w10 * br + w11 * br1;
            const gr = w00 * ag + w01 * ag1 + w10 * bg + w11 * bg1;
            const bl = w00 * ab + w01 * ab1 + w10 * bb + w11 * bb1;
            const cr = c[o]!;
            const cg = c[o + 1]!;
            const cb = c[o + 2]!;
            c[o] = (cr + k * (r - cr) + 0.5) | 0;
            c[o + 1] = (cg + k * (gr - cg) + 0.5) | 0;
            c[o + 2] = (cb + k * (bl - cb) + 0.5) | 0;
            ar = ar1;
            ag = ag1;
            ab = ab1;
            br = br1;
            bg = bg1;
            bb = bb1;
          }
        }
        continue;
      }
      for (let j = 0; j < bh; j++) {
        // Source rows clamped so every 2×2 tap stays inside the previous image (only at the border).
        const sy = Math.min(h - 2, Math.max(0, y0 + j + fv)) | 0;
        const rowA = 3 * sy * w;
        const rowB = rowA + stride;
        let o = 3 * ((y0 + j) * w + x0);
        for (let i = 0; i < bw; i++, o += 3) {
          const sx = Math.min(w - 2, Math.max(0, x0 + i + fu)) | 0;
          const a0 = rowA + 3 * sx;
          const b0 = rowB + 3 * sx;
          const r = w00 * p[a0]! + w01 * p[a0 + 3]! + w10 * p[b0]! + w11 * p[b0 + 3]!;
          const gr = w00 * p[a0 + 1]! + w01 * p[a0 + 4]! + w10 * p[b0 + 1]! + w11 * p[b0 + 4]!;
          const bl = w00 * p[a0 + 2]! + w01 * p[a0 + 5]! + w10 * p[b0 + 2]! + w11 * p[b0 + 5]!;
          const cr = c[o]!;
          const cg = c[o + 1]!;
          const cb = c[o + 2]!;
          c[o] = (cr + k * (r - cr) + 0.5) | 0;
          c[o + 1] = (cg + k * (gr - cg) + 0.5) | 0;
          c[o + 2] = (cb + k * (bl - cb) + 0.5) | 0;
        }
      }
    }
  }
}
