// Read a YUV4MPEG2 clip (8-bit 4:2:0, the format ffmpeg and Chromium's fake camera use) into RGB
// frames at a given size (BT.601 limited range → RGB, then a cover resize by sharp).
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import type { RgbImage } from '../frame/video-frame.js';

export async function readY4m(file: string, width: number, height: number): Promise<RgbImage[]> {
  const buf = await readFile(file);
  const headerEnd = buf.indexOf(0x0a);
  const header = buf.subarray(0, headerEnd).toString('latin1').split(' ');
  if (header[0] !== 'YUV4MPEG2') throw new Error(`${file} is not a YUV4MPEG2 file`);
  const w = Number(header.find((t) => t.startsWith('W'))?.slice(1));
  const h = Number(header.find((t) => t.startsWith('H'))?.slice(1));
  const colour = header.find((t) => t.startsWith('C'))?.slice(1) ?? '420jpeg';
  if (!colour.startsWith('420')) throw new Error(`${file}: only 8-bit 4:2:0 is supported, got C${colour}`);
  const cw = Math.ceil(w / 2);
  const ch = Math.ceil(h / 2);
  const frameBytes = w * h + 2 * cw * ch;
  const frames: RgbImage[] = [];
  let at = headerEnd + 1;
  while (at < buf.length) {
    const lineEnd = buf.indexOf(0x0a, at);
    if (lineEnd < 0 || !buf.subarray(at, at + 5).equals(Buffer.from('FRAME'))) break;
    const y = buf.subarray(lineEnd + 1, lineEnd + 1 + frameBytes);
    if (y.length < frameBytes) break;
    const rgb = new Uint8ClampedArray(w * h * 3);
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const Y = 1.164 * (y[r * w + c]! - 16);
        const ci = (r >> 1) * cw + (c >> 1);
        const U = y[w * h + ci]! - 128;
        const V = y[w * h + cw * ch + ci]! - 128;
        const o = 3 * (r * w + c);
        rgb[o] = Y + 1.596 * V;
        rgb[o + 1] = Y - 0.392 * U - 0.813 * V;
        rgb[o + 2] = Y + 2.017 * U;
      }
    }
    const { data } = await sharp(Buffer.from(rgb.buffer), { raw: { width: w, height: h, channels: 3 } })
      .resize(width, height, { fit: 'cover' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    frames.push({ width, height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    at = lineEnd + 1 + frameBytes;
  }
  if (frames.length === 0) throw new Error(`${file}: no frames`);
  return frames;
}
