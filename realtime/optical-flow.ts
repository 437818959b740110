// Dense optical flow between two small grayscale frames, for temporal consistency: DIS-style inverse
// search (Kroeger et al., ECCV 2016, like OpenCV's "ultrafast" preset: no variational refinement, the
// finest level upsampled). Coarse to fine over a pyramid, overlapping 8×8 patches each find their
// translation by inverse-compositional Gauss–Newton, then a photometrically weighted average
// densifies them. Why DIS: `sds bench flow` measures it against OpenCV's DIS and Farneback on clips
// with known motion (README "Temporal consistency"); a dense per-pixel Lucas–Kanade tried first was
// both slower and far less accurate here. Frames are tiny (twice the latent grid, e.g. 80×64), so
// plain typed-array loops cost about 0.3 ms per direction.

/** A single-channel float image, values on the 0–255 scale, row-major. */
export interface GrayImage {
  width: number;
  height: number;
  data: Float32Array;
}

/** Per-pixel displacement (dx, dy) interleaved, in pixels of this field's grid: I0(x) ≈ I1(x + flow(x)). */
export interface FlowField {
  width: number;
  height: number;
  data: Float32Array;
}

export interface FlowOptions {
  /** Coarsest pyramid level has at least this many pixels on its short side. */
  minLevelSize?: number;
  /** Gauss–Newton iterations per patch. */
  iterations?: number;
  /**
   * Stop refining this many pyramid levels above the input and upsample the rest of the way (like
   * OpenCV DIS's finest_scale): each level skipped divides the cost by about four.
   */
  finestLevel?: number;
}

/** Luma (BT.601) of packed RGB24, box-averaged down by an integer factor (into `out` when it fits). */
export function grayFromRgb(rgb: { width: number; height: number; data: Uint8Array }, factor: number, out?: GrayImage): GrayImage {
  if (!Number.isInteger(factor) || factor < 1) throw new RangeError(`grey frame: the factor must be a positive integer, got ${factor}`);
  const width = Math.floor(rgb.width / factor) | 0;
  const height = Math.floor(rgb.height / factor) | 0;
  const gray = out && out.width === width && out.height === height ? out : { width, height, data: new Float32Array(width * height) };
  if (factor % 4 === 0 && factor <= 32 && rgb.width % 4 === 0 && rgb.data.byteOffset % 4 === 0 && LITTLE_ENDIAN)
    grayFromRgbWords(rgb, factor, gray);
  else grayFromRgbBytes(rgb, factor, gray);
  return gray;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function grayFromRgbBytes(rgb: { width: number; height: number; data: Uint8Array }, f: number, gray: GrayImage): void {
  const factor = f | 0;
  const width = gray.width | 0;
  const height = gray.height | 0;
  const dst = gray.data;
  const src = rgb.data;
  const stride = (3 * rgb.width) | 0;
  // Integer sums per channel (exact), weighted once per output pixel: a third of the multiplies.
  const norm = 1 / (factor * factor);
  for (let y = 0; y < height; y++) {
    const top = y * factor * stride;
    for (let x = 0, o = y * width; x < width; x++, o++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let row = top + 3 * x * factor, end = row + factor * stride; row < end; row += stride) {
        for (let i = row, e = row + 3 * factor; i < e; i += 3) {
          r += src[i]!;
          g += src[i + 1]!;
          b += src[i + 2]!;
        }
      }
      dst[o] = (0.299 * r + 0.587 * g + 0.114 * b) * norm;
    }
  }
}

/**
 * grayFromRgbBytes for a factor that is a multiple of 4, reading 32-bit words: four RGB pixels are
 * three words, [R0 G0 B0 R1] [G1 B1 R2 G2] [B2 R3 G3 B3] (little-endian), and masking a word's even
 * and odd bytes gives two 16-bit lanes to sum in (each lane gains at most 255 per word, factor²/4
 * words per output pixel: no carry between lanes up to factor 32). The sums are the same integers,
 * so the result is bit for bit the same, at a quarter of the reads (about 4× faster here).
 */
function grayFromRgbWords(rgb: { width: number; height: number; data: Uint8Array }, f: number, gray: GrayImage): void {
  const factor = f | 0;
  const width = gray.width | 0;
  const height = gray.height | 0;
  const dst = gray.data;
  const src = new Uint32Array(rgb.data.buffer, rgb.data.byteOffset, rgb.data.length >> 2);
  const stride = (3 * rgb.width) >> 2;
  const words = (3 * factor) >> 2;
  const norm = 1 / (factor * factor);
  const M = 0x00ff00ff;
  for (let y = 0; y < height; y++) {
    const top = y * factor * stride;
    for (let x = 0, o = y * width; x < width; x++, o++) {
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      let a4 = 0;
      let a5 = 0;
      for (let row = top + words * x, end = row + factor * stride; row < end; row += stride) {
        for (let i = row, e = row + words; i < e; i += 3) {
          const w0 = src[i]!;
          const w1 = src[i + 1]!;
          const w2 = src[i + 2]!;
          a0 += w0 & M; // R0, B0
          a1 += (w0 >>> 8) & M; // G0, R1
          a2 += w1 & M; // G1, R2
          a3 += (w1 >>> 8) & M; // B1, G2
          a4 += w2 & M; // B2, G3
          a5 += (w2 >>> 8) & M; // R3, B3
        }
      }
      const r = (a0 & 0xffff) + (a1 >>> 16) + (a2 >>> 16) + (a5 & 0xffff);
      const g = (a1 & 0xffff) + (a2 & 0xffff) + (a3 >>> 16) + (a4 >>> 16);
      const b = (a0 >>> 16) + (a3 & 0xffff) + (a4 & 0xffff) + (a5 >>> 16);
      dst[o] = (0.299 * r + 0.587 * g + 0.114 * b) * norm;
    }
  }
}

/** Bilinear sample with clamp-to-edge. */
export function sampleBilinear(data: Float32Array, width: number, height: number, x: number, y: number): number {
  const xc = x < 0 ? 0 : x > width - 1 ? width - 1 : x;
  const yc = y < 0 ? 0 : y > height - 1 ? height - 1 : y;
  const x0 = Math.min(Math.floor(xc), width - 2 < 0 ? 0 : width - 2);
  const y0 = Math.min(Math.floor(yc), height - 2 < 0 ? 0 : height - 2);
  const ax = xc - x0;
  const ay = yc - y0;
  const x1 = Math.min(x0 + 1, width - 1);
  const y1 = Math.min(y0 + 1, height - 1);
  const r0 = y0 * width;
  const r1 = y1 * width;
  const top = data[r0 + x0]! + (data[r0 + x1]! - data[r0 + x0]!) * ax;
  const bottom = data[r1 + x0]! + (data[r1 + x1]! - data[r1 + x0]!) * ax;
  return top + (bottom - top) * ay;
}

/**
 * A frame made ready for flow: its pyramid (finest level first, level 0 is the frame itself) and the
 * gradients of the levels DIS refines. A frame is prepared once and used for both flow directions,
 * this frame's and the next one's, and its buffers are reused for a later frame of the same size.
 */
export interface FlowFrame {
  levels: GrayImage[];
  /** Per level; empty arrays on levels below the finest refined one. */
  gx: Float32Array[];
  gy: Float32Array[];
}

/**
 * DIS flow with its working memory: everything a frame pair needs (per-level flow fields, patch
 * scratch, accumulators, patch grids, upsampling tables) is allocated on the first pair of a size and
 * reused after, so a running stream allocates nothing per frame (the allocations were a main source
 * of its latency spikes: GC pauses).
 */
export class FlowEstimator {
  readonly minLevelSize: number;
  readonly iterations: number;
  readonly finestLevel: number;
  private work: DisWorkspace | undefined;

  constructor(options: FlowOptions = {}) {
    this.minLevelSize = options.minLevelSize ?? 8;
    this.iterations = options.iterations ?? DIS_ITERATIONS;
    this.finestLevel = options.finestLevel ?? DEFAULT_FINEST_LEVEL;
  }

  /** Build `img`'s pyramid and gradients, into `into`'s buffers when it was prepared for this size. */
  prepare(img: GrayImage, into?: FlowFrame): FlowFrame {
    const sizes = pyramidSizes(img.width, img.height, this.minLevelSize);
    const finest = Math.min(this.finestLevel, sizes.length - 1);
    const fits =
      into !== undefined &&
      into.levels.length === sizes.length &&
      into.levels.every((l, k) => l.width === sizes[k]![0] && l.height === sizes[k]![1]);
    const frame: FlowFrame = fits
      ? into
      : {
          levels: sizes.map(([w, h], k) => (k === 0 ? img : { width: w, height: h, data: new Float32Array(w * h) })),
          gx: sizes.map(([w, h], k) => new Float32Array(k >= finest ? w * h : 0)),
          gy: sizes.map(([w, h], k) => new Float32Array(k >= finest ? w * h : 0)),
        };
    frame.levels[0] = img;
    for (let k = 1; k < sizes.length; k++) halveGray(frame.levels[k - 1]!, frame.levels[k]!);
    for (let k = finest; k < sizes.length; k++) gradients(frame.levels[k]!, frame.gx[k]!, frame.gy[k]!);
    // The flow's working memory for this size, now: a stream's first frame has no flow to compute.
    this.workspace(frame.levels);
    return frame;
  }

  /** Flow from frame `a` to frame `b` (prepared, same size): I_a(x) ≈ I_b(x + flow(x)), into `out` when it fits. */
  estimate(a: FlowFrame, b: FlowFrame, out?: FlowField): FlowField {
    const i0 = a.levels[0]!;
    const i1 = b.levels[0]!;
    if (i0.width !== i1.width || i0.height !== i1.height)
      throw new RangeError(`flow needs frames of one size, got ${i0.width}×${i0.height} and ${i1.width}×${i1.height}`);
    const work = this.workspace(a.levels);
    const top = a.levels.length - 1;
    const finest = Math.min(this.finestLevel, top);
    for (let level = top; level >= finest; level--) {
      const flow = work.flows[level]!;
      if (level === top) flow.data.fill(0);
      else upsampleFlow(work.flows[level + 1]!, flow, work.upsample[level]!);
      disLevel(a.levels[level]!, a.gx[level]!, a.gy[level]!, b.levels[level]!, flow, this.iterations, work, level);
    }
    const result =
      out && out.width === i0.width && out.height === i0.height
        ? out
        : { width: i0.width, height: i0.height, data: new Float32Array(i0.width * i0.height * 2) };
    if (finest > 0) upsampleFlow(work.flows[finest]!, result, work.upsample[0]!);
    else result.data.set(work.flows[0]!.data);
    return result;
  }

  private workspace(levels: GrayImage[]): DisWorkspace {
    const w = this.work;
    if (w && w.flows.length === levels.length && w.flows.every((f, k) => f.width === levels[k]!.width && f.height === levels[k]!.height))
      return w;
    this.work = newDisWorkspace(levels, this.finestLevel);
    return this.work;
  }
}

/** Flow from `i0` to `i1` (same size): I0(x) ≈ I1(x + flow(x)). One-off: a stream keeps a FlowEstimator. */
export function estimateFlow(i0: GrayImage, i1: GrayImage, options: FlowOptions = {}): FlowField {
  if (i0.width !== i1.width || i0.height !== i1.height)
    throw new RangeError(`flow needs frames of one size, got ${i0.width}×${i0.height} and ${i1.width}×${i1.height}`);
  const estimator = new FlowEstimator(options);
  return estimator.estimate(estimator.prepare(i0), estimator.prepare(i1));
}

/** Level sizes, finest first: halve (odd edges dropped) while the short side stays ≥ 2·minSize. */
function pyramidSizes(width: number, height: number, minSize: number): Array<[number, number]> {
  const sizes: Array<[number, number]> = [[width, height]];
  for (;;) {
    const [w, h] = sizes[sizes.length - 1]!;
    if (Math.min(w, h) / 2 < minSize) return sizes;
    sizes.push([w >> 1, h >> 1]);
  }
}

/** 2×2 box downsample (odd edges dropped) into `out` (half the size). */
function halveGray(img: GrayImage, out: GrayImage): void {
  const width = out.width | 0;
  const height = out.height | 0;
  const from = img.width | 0;
  const dst = out.data;
  const s = img.data;
  for (let y = 0; y < height; y++) {
    const r0 = 2 * y * from;
    const r1 = r0 + from;
    for (let x = 0, o = y * width; x < width; x++, o++)
      dst[o] = 0.25 * (s[r0 + 2 * x]! + s[r0 + 2 * x + 1]! + s[r1 + 2 * x]! + s[r1 + 2 * x + 1]!);
  }
}

/** Central-difference gradients (one-sided at the border). */
function gradients(img: GrayImage, gx: Float32Array, gy: Float32Array): void {
  const w = img.width | 0;
  const h = img.height | 0;
  const d = img.data;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const xl = x > 0 ? i - 1 : i;
      const xr = x < w - 1 ? i + 1 : i;
      const yu = y > 0 ? i - w : i;
      const yd = y < h - 1 ? i + w : i;
      gx[i] = (d[xr]! - d[xl]!) / (xr - xl || 1);
      gy[i] = (d[yd]! - d[yu]!) / ((yd - yu) / w || 1);
    }
  }
}

/** Source columns and rows, and their weights, for bilinear upsampling a field to another grid. */
interface UpsampleTable {
  col0: Int32Array;
  col1: Int32Array;
  colA: Float32Array;
  row0: Int32Array;
  row1: Int32Array;
  rowA: Float64Array;
  /** Scratch: every source row interpolated to the new width, (u, v) interleaved. */
  rows: Float64Array;
}

function upsampleTable(fw: number, fh: number, width: number, height: number): UpsampleTable {
  const sx = fw / width;
  const sy = fh / height;
  const t: UpsampleTable = {
    col0: new Int32Array(width),
    col1: new Int32Array(width),
    colA: new Float32Array(width),
    row0: new Int32Array(height),
    row1: new Int32Array(height),
    rowA: new Float64Array(height),
    rows: new Float64Array(fh * width * 2),
  };
  for (let x = 0; x < width; x++) {
    const f = Math.min(fw - 1, Math.max(0, (x + 0.5) * sx - 0.5));
    t.col0[x] = Math.floor(f);
    t.col1[x] = Math.min(fw - 1, t.col0[x]! + 1);
    t.colA[x] = f - t.col0[x]!;
  }
  for (let y = 0; y < height; y++) {
    const f = Math.min(fh - 1, Math.max(0, (y + 0.5) * sy - 0.5));
    t.row0[y] = Math.floor(f);
    t.row1[y] = Math.min(fh - 1, t.row0[y]! + 1);
    t.rowA[y] = f - t.row0[y]!;
  }
  return t;
}

/**
 * Bilinear upsample of `flow` to `out`'s grid, vectors scaled to the new grid. Each source row is
 * interpolated across once (into the table's scratch, in double precision) and then shared by the
 * two or three output rows that blend it: the same arithmetic as interpolating per output pixel.
 */
function upsampleFlow(flow: FlowField, out: FlowField, t: UpsampleTable): void {
  const width = out.width | 0;
  const height = out.height | 0;
  const o32 = out.data;
  const fw = flow.width | 0;
  const fh = flow.height | 0;
  const ku = 1 / (fw / width);
  const kv = 1 / (fh / height);
  const d = flow.data;
  const rows = t.rows;
  for (let r = 0, o = 0; r < fh; r++) {
    const row = 2 * r * fw;
    for (let x = 0; x < width; x++, o += 2) {
      const a = t.colA[x]!;
      const c0 = row + 2 * t.col0[x]!;
      const c1 = row + 2 * t.col1[x]!;
      rows[o] = d[c0]! + a * (d[c1]! - d[c0]!);
      rows[o + 1] = d[c0 + 1]! + a * (d[c1 + 1]! - d[c0 + 1]!);
    }
  }
  for (let y = 0; y < height; y++) {
    const ay = t.rowA[y]!;
    let top = 2 * t.row0[y]! * width;
    let bottom = 2 * t.row1[y]! * width;
    for (let o = 2 * y * width, end = o + 2 * width; o < end; o += 2, top += 2, bottom += 2) {
      const ut = rows[top]!;
      const vt = rows[top + 1]!;
      o32[o] = (ut + ay * (rows[bottom]! - ut)) * ku;
      o32[o + 1] = (vt + ay * (rows[bottom + 1]! - vt)) * kv;
    }
  }
}

/** Measured by `sds bench flow`: refining the finest level costs 4× for little accuracy at this size. */
const DEFAULT_FINEST_LEVEL = 1;

// --- DIS: patch inverse search + densification ---------------------------------------------------

/**
 * Sample a patch×patch block of `d` at (x0 + i, y0 + j) for a sub-pixel (x0, y0). All pixels of a
 * translated patch share one set of bilinear weights, so inside the frame this is 4 reads and no
 * clamping per pixel; only blocks that touch the border take the clamped path.
 */
function samplePatch(d: Float32Array, w: number, h: number, x0: number, y0: number, patch: number, out: Float32Array): void {
  const fx = Math.floor(x0);
  const fy = Math.floor(y0);
  if (fx >= 0 && fy >= 0 && fx + patch < w && fy + patch < h) {
    const ix = fx | 0; // in range: int32 index arithmetic below
    const iy = fy | 0;
    const ax = x0 - ix;
    const ay = y0 - iy;
    const w00 = (1 - ax) * (1 - ay);
    const w01 = ax * (1 - ay);
    const w10 = (1 - ax) * ay;
    const w11 = ax * ay;
    for (let j = 0, k = 0; j < patch; j++) {
      let r = (iy + j) * w + ix;
      for (let i = 0; i < patch; i++, k++, r++) out[k] = w00 * d[r]! + w01 * d[r + 1]! + w10 * d[r + w]! + w11 * d[r + w + 1]!;
    }
    return;
  }
  for (let j = 0, k = 0; j < patch; j++) for (let i = 0; i < patch; i++, k++) out[k] = sampleBilinear(d, w, h, x0 + i, y0 + j);
}

const DIS_PATCH = 8;
/** Gauss–Newton steps per patch at most (most converge sooner): 8 measured the same error as 12, for less time. */
const DIS_ITERATIONS = 8;
const DIS_STRIDE = 4;

/** FlowEstimator's working memory for one pyramid shape. */
interface DisWorkspace {
  /** The flow on each level's grid (only levels ≥ finest are used). */
  flows: FlowField[];
  /** upsample[k]: level k+1 → level k for k ≥ finest; upsample[0]: the finest refined level → level 0. */
  upsample: UpsampleTable[];
  /** Patch origins per level. */
  xs: Int32Array[];
  ys: Int32Array[];
  t0: Float32Array;
  pgx: Float32Array;
  pgy: Float32Array;
  r: Float32Array;
  /** Densification sums, sized for the largest level. */
  acc: Float32Array;
  wsum: Float32Array;
}

function newDisWorkspace(levels: GrayImage[], finestLevel: number): DisWorkspace {
  const top = levels.length - 1;
  const finest = Math.min(finestLevel, top);
  const flows = levels.map(({ width, height }, k) => ({ width, height, data: new Float32Array(k >= finest ? width * height * 2 : 0) }));
  const table = (from: GrayImage, to: GrayImage): UpsampleTable => upsampleTable(from.width, from.height, to.width, to.height);
  const upsample = levels.map((l, k) => (k >= finest && k < top ? table(levels[k + 1]!, l) : emptyTable()));
  if (finest > 0) upsample[0] = table(levels[finest]!, levels[0]!);
  const xs: Int32Array[] = [];
  const ys: Int32Array[] = [];
  for (const { width: w, height: h } of levels) {
    const patch = Math.min(DIS_PATCH, w, h);
    const stride = Math.max(1, Math.min(DIS_STRIDE, patch >> 1));
    xs.push(patchOrigins(w, patch, stride));
    ys.push(patchOrigins(h, patch, stride));
  }
  const n = DIS_PATCH * DIS_PATCH;
  const largest = levels[finest]!.width * levels[finest]!.height;
  return {
    flows,
    upsample,
    xs,
    ys,
    t0: new Float32Array(n),
    pgx: new Float32Array(n),
    pgy: new Float32Array(n),
    r: new Float32Array(n),
    acc: new Float32Array(2 * largest),
    wsum: new Float32Array(largest),
  };
}

/** Patch origins along a side: every `stride`, plus one flush with the far edge. */
function patchOrigins(size: number, patch: number, stride: number): Int32Array {
  const at: number[] = [];
  for (let x = 0; x + patch <= size; x += stride) at.push(x);
  if (at[at.length - 1]! + patch < size) at.push(size - patch);
  return Int32Array.from(at);
}

function emptyTable(): UpsampleTable {
  return upsampleTable(0, 0, 0, 0);
}

function disLevel(
  i0: GrayImage,
  gx: Float32Array,
  gy: Float32Array,
  i1: GrayImage,
  flow: FlowField,
  iterations: number,
  work: DisWorkspace,
  level: number,
): void {
  const w = i0.width | 0;
  const h = i0.height | 0;
  const patch = Math.min(DIS_PATCH, w, h) | 0;
  const xs = work.xs[level]!;
  const ys = work.ys[level]!;
  const n = patch * patch;
  const { t0, pgx, pgy, r, acc, wsum } = work;
  acc.fill(0, 0, 2 * w * h);
  wsum.fill(0, 0, w * h);
  const d0 = i0.data;
  const d1 = i1.data;
  const fd = flow.data;

  for (let yi = 0; yi < ys.length; yi++) {
    const py = ys[yi]!;
    for (let xi = 0; xi < xs.length; xi++) {
      const px = xs[xi]!;
      // Template and its Hessian (inverse compositional: computed once per patch). Mean-normalised
      // like DIS, so a uniform brightness change between frames does not move the patch.
      let mean0 = 0;
      let hxx = 0;
      let hxy = 0;
      let hyy = 0;
      for (let j = 0, k = 0; j < patch; j++) {
        const row = (py + j) * w + px;
        for (let i = 0; i < patch; i++, k++) {
          t0[k] = d0[row + i]!;
          mean0 += t0[k]!;
          const ex = gx[row + i]!;
          const ey = gy[row + i]!;
          pgx[k] = ex;
          pgy[k] = ey;
          hxx += ex * ex;
          hxy += ex * ey;
          hyy += ey * ey;
        }
      }
      mean0 /= n;
      // A small ridge keeps flat or one-dimensional patches from flying off along the aperture.
      const ridge = 1e-3 * (hxx + hyy) + 1e-3;
      hxx += ridge;
      hyy += ridge;
      const det = hxx * hyy - hxy * hxy;
      const c = 2 * ((py + (patch >> 1)) * w + px + (patch >> 1));
      const u0 = fd[c]!;
      const v0 = fd[c + 1]!;
      let u = u0;
      let v = v0;
      let bestCost = Infinity;
      let bestU = u0;
      let bestV = v0;
      for (let it = 0; it <= iterations; it++) {
        samplePatch(d1, w, h, px + u, py + v, patch, r);
        let mean1 = 0;
        for (let k = 0; k < n; k++) mean1 += r[k]!;
        mean1 /= n;
        let bx = 0;
        let by = 0;
        let cost = 0;
        for (let k = 0; k < n; k++) {
          const e = r[k]! - mean1 - (t0[k]! - mean0);
          cost += e * e;
          bx += pgx[k]! * e;
          by += pgy[k]! * e;
        }
        if (cost < bestCost) {
          bestCost = cost;
          bestU = u;
          bestV = v;
        }
        if (it === iterations) break;
        const du = (hyy * bx - hxy * by) / det;
        const dv = (hxx * by - hxy * bx) / det;
        u -= du;
        v -= dv;
        if (du * du + dv * dv < 1e-4) break;
      }
      // A patch that wandered further than its own size from the coarse estimate is not trusted.
      if ((bestU - u0) ** 2 + (bestV - v0) ** 2 > patch * patch) {
        bestU = u0;
        bestV = v0;
      }
      // Densify: each pixel of the patch gets this translation, weighted by how well it explains it.
      samplePatch(d1, w, h, px + bestU, py + bestV, patch, r);
      for (let j = 0, k = 0; j < patch; j++) {
        for (let i = 0, o = (py + j) * w + px; i < patch; i++, k++, o++) {
          const wt = 1 / Math.max(1, Math.abs(r[k]! - d0[o]!));
          acc[2 * o] += wt * bestU;
          acc[2 * o + 1] += wt * bestV;
          wsum[o] += wt;
        }
      }
    }
  }
  for (let o = 0; o < w * h; o++) {
    if (wsum[o]! > 0) {
      fd[2 * o] = acc[2 * o]! / wsum[o]!;
      fd[2 * o + 1] = acc[2 * o + 1]! / wsum[o]!;
    }
  }
}
