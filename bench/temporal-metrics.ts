// Temporal-quality metrics for restyled video: warp error (Lai et al., ECCV 2018), a flicker index for
// static scenes, and PSNR to a style target. Pure functions over RGB frames and flow fields, so they
// can be checked on hand-made inputs.
import type { RgbImage } from '../frame/video-frame.js';
import { occlusionMask, warpRgb } from '../realtime/flow-warp.js';
import type { FlowField } from '../realtime/optical-flow.js';

/**
 * Warp error of one pair: mean absolute difference (0–255, over RGB) between `next` and `prev`
 * warped into it along `backward` (next → prev), over the pixels the forward–backward check on
 * (`backward`, `forward`) marks visible. Returns the error and the fraction of pixels counted.
 */
export function warpErrorPair(
  prev: RgbImage,
  next: RgbImage,
  backward: FlowField,
  forward: FlowField,
): { error: number; coverage: number } {
  const mask = occlusionMask(backward, forward);
  const warped = warpRgb(prev, backward);
  let sum = 0;
  let count = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    const o = 3 * i;
    sum +=
      Math.abs(warped[o]! - next.data[o]!) + Math.abs(warped[o + 1]! - next.data[o + 1]!) + Math.abs(warped[o + 2]! - next.data[o + 2]!);
    count += 3;
  }
  return { error: count ? sum / count : NaN, coverage: count / (3 * mask.length) };
}

/** Mean warp error over a clip: frames[t] → frames[t+1] with the flows of the *input* video. */
export function warpError(frames: RgbImage[], forward: FlowField[], backward: FlowField[]): number {
  let sum = 0;
  for (let t = 0; t + 1 < frames.length; t++) sum += warpErrorPair(frames[t]!, frames[t + 1]!, backward[t]!, forward[t]!).error;
  return sum / (frames.length - 1);
}

/** Mean absolute frame-to-frame change (0–255 over RGB), averaged over the clip. */
export function meanFrameChange(frames: RgbImage[]): number {
  let sum = 0;
  for (let t = 0; t + 1 < frames.length; t++) {
    const a = frames[t]!.data;
    const b = frames[t + 1]!.data;
    let d = 0;
    for (let i = 0; i < a.length; i++) d += Math.abs(a[i]! - b[i]!);
    sum += d / a.length;
  }
  return sum / (frames.length - 1);
}

/** Flicker index of a static scene: how much the output changes frame to frame per unit of input change. */
export function flickerIndex(inputs: RgbImage[], outputs: RgbImage[]): number {
  return meanFrameChange(outputs) / meanFrameChange(inputs);
}

/** PSNR (dB) between two RGB images of one size. */
export function psnr(a: RgbImage, b: RgbImage): number {
  if (a.data.length !== b.data.length) throw new RangeError('psnr: images differ in size');
  let se = 0;
  for (let i = 0; i < a.data.length; i++) se += (a.data[i]! - b.data[i]!) ** 2;
  const mse = se / a.data.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

export function meanPsnr(outputs: RgbImage[], targets: RgbImage[]): number {
  return outputs.reduce((s, o, t) => s + psnr(o, targets[t]!), 0) / outputs.length;
}
