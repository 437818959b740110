// Dense optical flow between two small grayscale frames, for temporal consistency: DIS-style inverse
// search (Kroeger et al., ECCV 2016, like OpenCV's "ultrafast" preset: no variational refinement, the
// finest level upsampled). Coarse to fine over a pyramid, overlapping 8×8 patches each find their
// translation by inverse-compositional Gauss–Newton, then a photometrically weighted average
// densifies them. Why DIS: `sds bench flow` measures it against OpenCV's DIS and Farneback on clips
// with known motion (README "Temporal consistency"); a dense per-pixel Lucas–Kanade tried first was
// both slower and far less accurate here. Frames are tiny (twice the latent grid, e.g. 80×64), so
// plain typed-array loops cost about a millisecond for both directions.

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

/** Luma (BT.601) of packed RGB24, box-averaged down by an integer factor. */
export function grayFromRgb(rgb: { width: number; height: number; data: Uint8Array }, factor: number): GrayImage {
  const width = Math.floor(rgb.width / factor);
  const height = Math.floor(rgb.height / factor);
  const out = new Float32Array(width * height);
  const src = rgb.data;
  // Integer sums per channel (exact), weighted once per output pixel: a third of the multiplies.
  const norm = 1 / (factor * factor);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let dy = 0; dy < factor; dy++) {
        let i = ((y * factor + dy) * rgb.width + x * factor) * 3;
        for (let dx = 0; dx < factor; dx++, i += 3) {
          r += src[i]!;
          g += src[i + 1]!;
          b += src[i + 2]!;
        }
      }
      out[y * width + x] = (0.299 * r + 0.587 * g + 0.114 * b) * norm;
    }
  }
  return { width, height, data: out };
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

/** 2×2 box downsample (odd edges dropped). */
function halveGray(img: GrayImage): GrayImage {
  const width = img.width >> 1;
  const height = img.height >> 1;
  const out = new Float32Array(width * height);
  const s = img.data;
  for (let y = 0; y < height; y++) {
    const r0 = 2 * y * img.width;
    const r1 = r0 + img.width;
    for (let x = 0; x < width; x++) out[y * width + x] = 0.25 * (s[r0 + 2 * x]! + s[r0 + 2 * x + 1]! + s[r1 + 2 * x]! + s[r1 + 2 * x + 1]!);
  }
  return { width, height, data: out };
}

/** Finest level first. */
function pyramid(img: GrayImage, minSize: number): GrayImage[] {
  const levels = [img];
  for (;;) {
    const top = levels[levels.length - 1]!;
    if (Math.min(top.width, top.height) / 2 < minSize) return levels;
    levels.push(halveGray(top));
  }
}

/** Central-difference gradients (one-sided at the border). */
function gradients(img: GrayImage): { gx: Float32Array; gy: Float32Array } {
  const { width: w, height: h, data: d } = img;
  const gx = new Float32Array(w * h);
  const gy = new Float32Array(w * h);
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
  return { gx, gy };
}

/** Bilinear upsample of a flow field to (width, height), vectors scaled to the new grid. */
function upsampleFlow(flow: FlowField, width: number, height: number): FlowField {
  const out = new Float32Array(width * height * 2);
  const fw = flow.width;
  const fh = flow.height;
  const sx = fw / width;
  const sy = fh / height;
  const d = flow.data;
  // Each column's source pair and weight is the same on every row: tabulate them once.
  const col0 = new Int32Array(width);
  const col1 = new Int32Array(width);
  const colA = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const f = Math.min(fw - 1, Math.max(0, (x + 0.5) * sx - 0.5));
    col0[x] = Math.floor(f);
    col1[x] = Math.min(fw - 1, col0[x]! + 1);
    colA[x] = f - col0[x]!;
  }
  const ku = 1 / sx;
  const kv = 1 / sy;
  for (let y = 0; y < height; y++) {
    const f = Math.min(fh - 1, Math.max(0, (y + 0.5) * sy - 0.5));
    const r0 = Math.floor(f);
    const r1 = Math.min(fh - 1, r0 + 1);
    const ay = f - r0;
    const top = 2 * r0 * fw;
    const bottom = 2 * r1 * fw;
    for (let x = 0, o = 2 * y * width; x < width; x++, o += 2) {
      const a = colA[x]!;
      const c0 = 2 * col0[x]!;
      const c1 = 2 * col1[x]!;
      const ut = d[top + c0]! + a * (d[top + c1]! - d[top + c0]!);
      const ub = d[bottom + c0]! + a * (d[bottom + c1]! - d[bottom + c0]!);
      const vt = d[top + c0 + 1]! + a * (d[top + c1 + 1]! - d[top + c0 + 1]!);
      const vb = d[bottom + c0 + 1]! + a * (d[bottom + c1 + 1]! - d[bottom + c0 + 1]!);
      out[o] = (ut + ay * (ub - ut)) * ku;
      out[o + 1] = (vt + ay * (vb - vt)) * kv;
    }
  }
  return { width, height, data: out };
}

/** Flow from `i0` to `i1` (same size): I0(x) ≈ I1(x + flow(x)). */
export function estimateFlow(i0: GrayImage, i1: GrayImage, options: FlowOptions = {}): FlowField {
  if (i0.width !== i1.width || i0.height !== i1.height)
    throw new RangeError(`flow needs frames of one size, got ${i0.width}×${i0.height} and ${i1.width}×${i1.height}`);
  const p0 = pyramid(i0, options.minLevelSize ?? 8);
  const p1 = pyramid(i1, options.minLevelSize ?? 8);
  let flow: FlowField | undefined;
  const finest = Math.min(options.finestLevel ?? DEFAULT_FINEST_LEVEL, p0.length - 1);
  for (let level = p0.length - 1; level >= finest; level--) {
    const a = p0[level]!;
    const b = p1[level]!;
    flow = flow ? upsampleFlow(flow, a.width, a.height) : { width: a.width, height: a.height, data: new Float32Array(a.width * a.height * 2) };
    disLevel(a, b, flow, options.iterations ?? DIS_ITERATIONS);
  }
  return finest > 0 ? upsampleFlow(flow!, i0.width, i0.height) : flow!;
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
  const ix = Math.floor(x0);
  const iy = Math.floor(y0);
  if (ix >= 0 && iy >= 0 && ix + patch < w && iy + patch < h) {
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

function disLevel(i0: GrayImage, i1: GrayImage, flow: FlowField, iterations: number): void {
  const { width: w, height: h } = i0;
  const patch = Math.min(DIS_PATCH, w, h);
  const stride = Math.max(1, Math.min(DIS_STRIDE, patch >> 1));
  const { gx, gy } = gradients(i0);
  const xs: number[] = [];
  const ys: number[] = [];
  for (let x = 0; x + patch <= w; x += stride) xs.push(x);
  if (xs[xs.length - 1]! + patch < w) xs.push(w - patch);
  for (let y = 0; y + patch <= h; y += stride) ys.push(y);
  if (ys[ys.length - 1]! + patch < h) ys.push(h - patch);

  const n = patch * patch;
  const t0 = new Float32Array(n);
  const pgx = new Float32Array(n);
  const pgy = new Float32Array(n);
  const r = new Float32Array(n);
  const acc = new Float32Array(w * h * 2);
  const wsum = new Float32Array(w * h);
  const d0 = i0.data;
  const d1 = i1.data;

  for (const py of ys) {
    for (const px of xs) {
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
      const u0 = flow.data[c]!;
      const v0 = flow.data[c + 1]!;
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
        const y = py + j;
        for (let i = 0; i < patch; i++, k++) {
          const x = px + i;
          const o = y * w + x;
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
      flow.data[2 * o] = acc[2 * o]! / wsum[o]!;
      flow.data[2 * o + 1] = acc[2 * o + 1]! / wsum[o]!;
    }
  }
}
