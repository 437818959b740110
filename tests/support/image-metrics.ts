// Small image measures for tests that judge pixels: is this the input's structure, restyled?
import sharp from 'sharp';
import type { RgbImage } from '../../frame/video-frame.js';

export function luminance(image: RgbImage): Float32Array {
  const out = new Float32Array(image.width * image.height);
  for (let i = 0; i < out.length; i++) {
    out[i] = 0.299 * image.data[i * 3]! + 0.587 * image.data[i * 3 + 1]! + 0.114 * image.data[i * 3 + 2]!;
  }
  return out;
}

/** Sobel gradient magnitude of the luminance: where the edges are, whatever the colours. */
export function edges(image: RgbImage): Float32Array {
  const { width: w, height: h } = image;
  const y = luminance(image);
  const out = new Float32Array(w * h);
  for (let r = 1; r < h - 1; r++) {
    for (let c = 1; c < w - 1; c++) {
      const at = (dr: number, dc: number): number => y[(r + dr) * w + c + dc]!;
      const gx = at(-1, 1) + 2 * at(0, 1) + at(1, 1) - at(-1, -1) - 2 * at(0, -1) - at(1, -1);
      const gy = at(1, -1) + 2 * at(1, 0) + at(1, 1) - at(-1, -1) - 2 * at(-1, 0) - at(-1, 1);
      out[r * w + c] = Math.hypot(gx, gy);
    }
  }
  return out;
}

export function correlation(a: Float32Array, b: Float32Array): number {
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < a.length; i++) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= a.length;
  mb /= b.length;
  let cov = 0;
  let va = 0;
  let vb = 0;
  for (let i = 0; i < a.length; i++) {
    const da = a[i]! - ma;
    const db = b[i]! - mb;
    cov += da * db;
    va += da * da;
    vb += db * db;
  }
  return cov / Math.sqrt(va * vb + 1e-9);
}

export function meanAbsDiff(a: RgbImage, b: RgbImage): number {
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i]! - b.data[i]!);
  return sum / a.data.length;
}

/** Scale and center-crop (cover), as the server's ingress does, for a reference at model resolution. */
export async function coverResize(image: RgbImage, width: number, height: number): Promise<RgbImage> {
  const data = await sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  })
    .resize(width, height, { fit: 'cover' })
    .raw()
    .toBuffer();
  return { width, height, data: new Uint8Array(data) };
}

/** Downscale (box) so comparisons judge structure, not codec noise. */
export async function downscale(image: RgbImage, width: number, height: number): Promise<RgbImage> {
  const data = await sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  })
    .resize(width, height, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer();
  return { width, height, data: new Uint8Array(data) };
}

/**
 * Mean SSIM over the three channels with 7×7 uniform windows (scikit-image's default `structural_similarity`:
 * K1 0.01, K2 0.03, data range 255, sample covariance), so figures compare with the model card's.
 */
export function ssim(a: RgbImage, b: RgbImage): number {
  const { width: w, height: h } = a;
  const win = 7;
  const n = win * win;
  const cov = n / (n - 1);
  const c1 = (0.01 * 255) ** 2;
  const c2 = (0.03 * 255) ** 2;
  let total = 0;
  let count = 0;
  for (let ch = 0; ch < 3; ch++) {
    for (let y = 0; y + win <= h; y++) {
      for (let x = 0; x + win <= w; x++) {
        let sa = 0;
        let sb = 0;
        let saa = 0;
        let sbb = 0;
        let sab = 0;
        for (let dy = 0; dy < win; dy++) {
          let i = ((y + dy) * w + x) * 3 + ch;
          for (let dx = 0; dx < win; dx++, i += 3) {
            const va = a.data[i]!;
            const vb = b.data[i]!;
            sa += va;
            sb += vb;
            saa += va * va;
            sbb += vb * vb;
            sab += va * vb;
          }
        }
        const ma = sa / n;
        const mb = sb / n;
        const va = (saa / n - ma * ma) * cov;
        const vb = (sbb / n - mb * mb) * cov;
        const vab = (sab / n - ma * mb) * cov;
        total += ((2 * ma * mb + c1) * (2 * vab + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
        count++;
      }
    }
  }
  return total / count;
}
