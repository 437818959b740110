// Writes a YUV4MPEG2 clip for Chromium's fake camera (--use-file-for-fake-video-capture): a slow,
// looping pan across a real photo (or a drawn scene when no photo is in the repo), RGB → I420 BT.601.
import { existsSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

export interface ClipOptions {
  width?: number;
  height?: number;
  fps?: number;
  frames?: number;
  /** Horizontal travel of the pan in pixels (out and back over the clip, so the loop is seamless). */
  panPx?: number;
  /** Image to pan across; defaults to findSourceImage(). */
  source?: string;
}

/** The held-out photo of the default model, else any PNG under models/, else undefined (a drawn scene is used). */
export function findSourceImage(repoRoot: string): string | undefined {
  const heldout = path.join(repoRoot, 'models', 'default', 'testdata', 'heldout.png');
  if (existsSync(heldout)) return heldout;
  const stack = [path.join(repoRoot, 'models')];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== 'node_modules') stack.push(full);
      else if (entry.isFile() && entry.name.toLowerCase().endsWith('.png')) return full;
    }
  }
  return undefined;
}

export async function writePanningClip(file: string, options: ClipOptions = {}): Promise<void> {
  const { width = 640, height = 480, fps = 30, frames = 60, panPx = 24 } = options;
  if (width % 2 !== 0 || height % 2 !== 0) throw new Error('I420 needs even dimensions');
  const canvasWidth = width + panPx;
  const input = options.source ? sharp(options.source) : sharp(Buffer.from(drawnScene(canvasWidth, height)));
  const { data: rgb } = await input.resize(canvasWidth, height, { fit: 'cover' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });

  const handle = await open(file, 'w');
  try {
    await handle.write(`YUV4MPEG2 W${width} H${height} F${fps}:1 Ip A1:1 C420jpeg\n`);
    const frame = Buffer.alloc(width * height * 1.5);
    for (let i = 0; i < frames; i++) {
      const offset = Math.round((panPx * (1 - Math.cos((2 * Math.PI * i) / frames))) / 2);
      rgbWindowToI420(rgb, canvasWidth, offset, width, height, frame);
      await handle.write('FRAME\n');
      await handle.write(frame);
    }
  } finally {
    await handle.close();
  }
}

/** Converts a width×height window (starting at column x0) of packed RGB to planar I420, limited range. */
function rgbWindowToI420(rgb: Buffer, stride: number, x0: number, width: number, height: number, out: Buffer): void {
  const ySize = width * height;
  const cSize = ySize / 4;
  const cw = width / 2;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * stride + x0 + x) * 3;
      out[y * width + x] = Math.round(16 + (65.481 * rgb[p] + 128.553 * rgb[p + 1] + 24.966 * rgb[p + 2]) / 255);
    }
  }
  for (let cy = 0; cy < height / 2; cy++) {
    for (let cx = 0; cx < cw; cx++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (const [dx, dy] of [
        [0, 0],
        [1, 0],
        [0, 1],
        [1, 1],
      ]) {
        const p = ((cy * 2 + dy) * stride + x0 + cx * 2 + dx) * 3;
        r += rgb[p];
        g += rgb[p + 1];
        b += rgb[p + 2];
      }
      r /= 4;
      g /= 4;
      b /= 4;
      out[ySize + cy * cw + cx] = Math.round(128 + (-37.797 * r - 74.203 * g + 112 * b) / 255);
      out[ySize + cSize + cy * cw + cx] = Math.round(128 + (112 * r - 93.786 * g - 18.214 * b) / 255);
    }
  }
}

/** A landscape with distinct shapes, edges and colours, for repos without a photo. */
function drawnScene(width: number, height: number): string {
  const trees = Array.from({ length: 7 }, (_, i) => {
    const x = 40 + i * (width / 7);
    const h = 70 + ((i * 37) % 50);
    return `<rect x="${x - 5}" y="${height * 0.78 - 20}" width="10" height="30" fill="#5b3a1e"/>
      <polygon points="${x - 28},${height * 0.78 - 15} ${x + 28},${height * 0.78 - 15} ${x},${height * 0.78 - 15 - h}" fill="#1f6b35"/>`;
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#3a7bd5"/><stop offset="1" stop-color="#f9d29d"/></linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#sky)"/>
    <circle cx="${width * 0.75}" cy="${height * 0.22}" r="45" fill="#fff3b0"/>
    <polygon points="0,${height * 0.7} ${width * 0.25},${height * 0.35} ${width * 0.5},${height * 0.7}" fill="#6d6875"/>
    <polygon points="${width * 0.35},${height * 0.7} ${width * 0.65},${height * 0.3} ${width},${height * 0.7}" fill="#4a4e69"/>
    <rect y="${height * 0.7}" width="100%" height="${height * 0.3}" fill="#7fb069"/>
    <rect x="${width * 0.42}" y="${height * 0.55}" width="110" height="90" fill="#e9c46a" stroke="#222" stroke-width="3"/>
    <polygon points="${width * 0.42 - 10},${height * 0.55} ${width * 0.42 + 120},${height * 0.55} ${width * 0.42 + 55},${height * 0.45}" fill="#c0392b"/>
    <rect x="${width * 0.42 + 40}" y="${height * 0.55 + 45}" width="28" height="45" fill="#264653"/>
    ${trees}
  </svg>`;
}
