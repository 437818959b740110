// The unit that travels ingress → engine → egress (the README's Architecture section): pixels plus identity and
// timing. Output frames keep the input's RTP timestamp so a client can match them to what it sent.

/** Where a frame spent its time. Times are epoch ms from `nowMs()` so they compare across threads. */
export interface StageTiming {
  name: StageName;
  startMs: number;
  endMs: number;
}

export type StageName =
  | 'depacketize' // first packet of the frame → frame assembled
  | 'decode'
  | 'scale' // decoded picture → model-resolution RGB
  | 'mailbox' // waiting for the engine
  | 'dispatch' // main thread → inference worker and back (transfer overhead)
  | 'preprocess' // RGB → tensor
  | 'text_encode' // prompt → text embedding (text models; cached per prompt)
  | 'flow' // optical flow + occlusion mask (temporal consistency)
  | 'warp' // previous output latent warped into this frame
  | 'vae_encode'
  | 'denoise'
  | 'vae_decode'
  | 'postprocess' // tensor → RGB
  | 'reuse' // similarity filter reused the previous output
  | 'encode'
  | 'packetize';

/** Packed 8-bit RGB, row-major, no padding: data.length === width * height * 3. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface VideoFrame {
  image: RgbImage;
  /** 90 kHz RTP timestamp the frame arrived with (or a synthetic one for non-RTP inputs). */
  rtpTimestamp: number;
  /** Epoch ms when the last packet of this frame arrived: the start of the latency budget. */
  arrivalMs: number;
  /** Monotonic per-stream input sequence number (counts frames, including dropped ones). */
  seq: number;
  stages: StageTiming[];
  /** The path the engine chose for it: the model at `steps` and `scale`, or the previous output again. */
  path?: FramePath;
}

export type FramePath = { kind: 'model'; steps: number; scale: 1 | 0.5 } | { kind: 'reuse' };

export function recordStage(frame: VideoFrame, name: StageName, startMs: number, endMs: number): void {
  frame.stages.push({ name, startMs, endMs });
}
