// What the denoising pipeline takes from outside to steer a frame: a latent to pull its x0 estimate
// towards, with a weight per latent pixel. Where it comes from (the previous frame warped along the
// optical flow, realtime/latent-cache.ts) is the caller's business; models/ only applies it.

/** Latent layout [1, C, H, W]. */
export type LatentDims = readonly number[];

export interface LatentGuidance {
  /** The latent to blend towards, same layout as the current latent. */
  warped: Float32Array;
  /** Blend weight per latent pixel (H×W), 0..1. */
  weight: Float32Array;
}

/** Blend guidance into an x0 estimate in place: x0 += w · (warped − x0), per latent pixel across channels. */
export function applyGuidance(x0: Float32Array, guidance: LatentGuidance): void {
  const plane = guidance.weight.length;
  const channels = x0.length / plane;
  for (let c = 0; c < channels; c++) {
    const o = c * plane;
    for (let i = 0; i < plane; i++) {
      const w = guidance.weight[i]!;
      if (w > 0) x0[o + i] = x0[o + i]! + w * (guidance.warped[o + i]! - x0[o + i]!);
    }
  }
}
