// Clips with known motion, made from a real photo: a virtual camera pans, zooms or rotates over the
// photo (and a patch of it moves across as an occluder), so every frame's true optical flow is known
// exactly. The same camera path over the photo's style target gives each frame's target, so a
// benchmark can score style fidelity as well as temporal stability.
import type { RgbImage } from '../frame/video-frame.js';
import type { FlowField } from '../realtime/optical-flow.js';
import { gaussianNoise } from '../models/scheduler.js';

/** Frame → photo coordinates: px = a·x + b·y + c, py = d·x + e·y + f. */
export type Affine = [number, number, number, number, number, number];

export type MotionKind = 'pan' | 'zoom' | 'rotate' | 'occluder' | 'static-noise';
export const MOTION_KINDS: readonly MotionKind[] = ['pan', 'zoom', 'rotate', 'occluder', 'static-noise'];

export interface MotionClip {
  kind: MotionKind;
  frames: RgbImage[];
  /** The style target seen through the same camera, when a target photo was given. */
  targets?: RgbImage[];
  /** True forward flow frame t → t+1 on the frame grid (length frames − 1). */
  flows: FlowField[];
  /** Per pixel of frame t: 1 where it is still visible in frame t+1 (length frames − 1). */
  visible: Float32Array[];
  /** The occluder's rectangle in each frame (occluder clips). */
  occluder?: Array<{ x: number; y: number; width: number; height: number }>;
}

export interface MotionClipOptions {
  kind: MotionKind;
  width: number;
  height: number;
  frames: number;
  /** Camera-noise standard deviation on the 0–255 scale (static-noise clips; default 4). */
  noiseSigma?: number;
  seed?: number;
}

/** A triangle wave: 0 → range → 0 … at unit speed in `s`. */
function bounce(s: number, range: number): number {
  const m = s % (2 * range);
  return m <= range ? m : 2 * range - m;
}

function invert([a, b, c, d, e, f]: Affine): Affine {
  const det = a * e - b * d;
  return [e / det, -b / det, (b * f - c * e) / det, -d / det, a / det, (c * d - a * f) / det];
}

function apply([a, b, c, d, e, f]: Affine, x: number, y: number): [number, number] {
  return [a * x + b * y + c, d * x + e * y + f];
}

/** A camera of zoom `s` (photo px per frame px) at angle `theta`, centred on photo point (cx, cy). */
function camera(width: number, height: number, s: number, theta: number, cx: number, cy: number): Affine {
  const cos = Math.cos(theta) * s;
  const sin = Math.sin(theta) * s;
  const ox = width / 2;
  const oy = height / 2;
  return [cos, -sin, cx - cos * ox + sin * oy, sin, cos, cy - sin * ox - cos * oy];
}

/** Render the photo through a camera (bilinear). */
export function renderView(photo: RgbImage, cam: Affine, width: number, height: number): RgbImage {
  const data = new Uint8ClampedArray(width * height * 3);
  const pw = photo.width;
  const ph = photo.height;
  const src = photo.data;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let [px, py] = apply(cam, x + 0.5, y + 0.5);
      px = Math.min(pw - 1, Math.max(0, px - 0.5));
      py = Math.min(ph - 1, Math.max(0, py - 0.5));
      const x0 = Math.min(Math.floor(px), pw - 2);
      const y0 = Math.min(Math.floor(py), ph - 2);
      const ax = px - x0;
      const ay = py - y0;
      for (let c = 0; c < 3; c++) {
        const p00 = src[(y0 * pw + x0) * 3 + c]!;
        const p01 = src[(y0 * pw + x0 + 1) * 3 + c]!;
        const p10 = src[((y0 + 1) * pw + x0) * 3 + c]!;
        const p11 = src[((y0 + 1) * pw + x0 + 1) * 3 + c]!;
        data[(y * width + x) * 3 + c] = (p00 * (1 - ax) + p01 * ax) * (1 - ay) + (p10 * (1 - ax) + p11 * ax) * ay;
      }
    }
  }
  return { width, height, data: new Uint8Array(data.buffer) };
}

/** The occluder: a patch of the photo (and of its target) of this size, moving this far per frame. */
const OCCLUDER = { width: 0.3, height: 0.35, speed: [12, 3] as const };

export function makeMotionClip(photo: RgbImage, target: RgbImage | undefined, options: MotionClipOptions): MotionClip {
  const { kind, width, height, frames } = options;
  const cx = photo.width / 2;
  const cy = photo.height / 2;
  // Zoomed in enough that the camera never leaves the photo on any path below.
  const base = (0.6 * Math.max(photo.width / width, photo.height / height)) as number;
  const cams: Affine[] = [];
  for (let t = 0; t < frames; t++) {
    switch (kind) {
      case 'pan':
        // 4 frame px per frame to the right and 1 down, back and forth so it never leaves the photo.
        cams.push(
          camera(
            width,
            height,
            base,
            0,
            cx - 0.1 * photo.width + bounce(4 * base * t, 0.2 * photo.width),
            cy + bounce(base * t, 0.1 * photo.height) - 0.05 * photo.height,
          ),
        );
        break;
      case 'zoom':
        cams.push(camera(width, height, base * Math.pow(0.985, t), 0, cx, cy));
        break;
      case 'rotate':
        cams.push(camera(width, height, base * 0.95, (t * Math.PI) / 180, cx, cy));
        break;
      case 'occluder':
        cams.push(camera(width, height, base, 0, cx - 0.05 * photo.width + base * t, cy));
        break;
      case 'static-noise':
        cams.push(camera(width, height, base, 0, cx, cy));
        break;
    }
  }
  const clip: MotionClip = { kind, frames: [], flows: [], visible: [] };
  if (target) clip.targets = [];
  for (let t = 0; t < frames; t++) {
    clip.frames.push(renderView(photo, cams[t]!, width, height));
    if (target) clip.targets!.push(renderView(target, cams[t]!, width, height));
  }
  for (let t = 0; t + 1 < frames; t++) {
    const next = invert(cams[t + 1]!);
    const flow = new Float32Array(width * height * 2);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const [px, py] = apply(cams[t]!, x + 0.5, y + 0.5);
        const [nx, ny] = apply(next, px, py);
        flow[2 * (y * width + x)] = nx - (x + 0.5);
        flow[2 * (y * width + x) + 1] = ny - (y + 0.5);
      }
    }
    const visible = new Float32Array(width * height);
    for (let i = 0; i < width * height; i++) {
      const x = (i % width) + flow[2 * i]!;
      const y = Math.floor(i / width) + flow[2 * i + 1]!;
      visible[i] = x >= 0 && y >= 0 && x <= width - 1 && y <= height - 1 ? 1 : 0;
    }
    clip.flows.push({ width, height, data: flow });
    clip.visible.push(visible);
  }
  if (kind === 'occluder') pasteOccluder(clip, width, height);
  if (kind === 'static-noise') addCameraNoise(clip.frames, options.noiseSigma ?? 4, options.seed ?? 7);
  return clip;
}

/** Paste a patch (from the middle of the first frame, and of its target) that moves over the scene. */
function pasteOccluder(clip: MotionClip, width: number, height: number): void {
  const ow = Math.round(OCCLUDER.width * width);
  const oh = Math.round(OCCLUDER.height * height);
  const [sx0, sy0] = OCCLUDER.speed;
  const sx = Math.round(width * 0.55);
  const sy = Math.round(height * 0.3);
  const patch = (img: RgbImage): Uint8Array => {
    const out = new Uint8Array(ow * oh * 3);
    for (let y = 0; y < oh; y++) out.set(img.data.subarray(((sy + y) * width + sx) * 3, ((sy + y) * width + sx + ow) * 3), y * ow * 3);
    return out;
  };
  const framePatch = patch(clip.frames[0]!);
  const targetPatch = clip.targets ? patch(clip.targets[0]!) : undefined;
  // Integer positions, back and forth across the frame: the true flow inside the object is exact.
  const at = (t: number): [number, number] => [
    Math.round(width * 0.05) + bounce(sx0 * t, Math.round(width * 0.6)),
    Math.round(height * 0.2) + bounce(sy0 * t, Math.round(height * 0.4)),
  ];
  const inside = (t: number, x: number, y: number): boolean => {
    const [ox, oy] = at(t);
    return x >= ox && x < ox + ow && y >= oy && y < oy + oh;
  };
  const paste = (img: RgbImage, p: Uint8Array, t: number): void => {
    const [ox, oy] = at(t);
    for (let y = 0; y < oh; y++) {
      const fy = oy + y;
      if (fy < 0 || fy >= height) continue;
      for (let x = 0; x < ow; x++) {
        const fx = ox + x;
        if (fx < 0 || fx >= width) continue;
        for (let c = 0; c < 3; c++) img.data[(fy * width + fx) * 3 + c] = p[(y * ow + x) * 3 + c]!;
      }
    }
  };
  clip.occluder = clip.frames.map((_, t) => ({ x: at(t)[0], y: at(t)[1], width: ow, height: oh }));
  clip.frames.forEach((f, t) => paste(f, framePatch, t));
  clip.targets?.forEach((f, t) => paste(f, targetPatch!, t));
  for (let t = 0; t < clip.flows.length; t++) {
    const flow = clip.flows[t]!.data;
    const visible = clip.visible[t]!;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        if (inside(t, x, y)) {
          flow[2 * i] = at(t + 1)[0] - at(t)[0];
          flow[2 * i + 1] = at(t + 1)[1] - at(t)[1];
          visible[i] = 1;
        } else if (inside(t + 1, Math.round(x + flow[2 * i]!), Math.round(y + flow[2 * i + 1]!))) {
          visible[i] = 0; // background that the object covers in the next frame
        }
      }
    }
  }
}

function addCameraNoise(frames: RgbImage[], sigma: number, seed: number): void {
  frames.forEach((frame, t) => {
    const noise = gaussianNoise(seed + t, frame.data.length);
    const out = new Uint8ClampedArray(frame.data.buffer, frame.data.byteOffset, frame.data.length);
    for (let i = 0; i < out.length; i++) out[i] = frame.data[i]! + sigma * noise[i]!;
  });
}
