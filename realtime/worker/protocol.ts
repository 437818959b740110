// Messages between ModelRuntime (main thread) and an inference worker. Pixels travel as ArrayBuffers,
// never as JSON arrays: transferred to the worker, copied back (see serve-inference.ts for why).
import type { StageTiming } from '../../frame/video-frame.js';
import type { ExecutionProvider, ImageBlendPlacement } from '../../models/restyle-types.js';
import type { RestyleSettings } from '../stream-restyler.js';

export interface WorkerInit {
  modelDir: string;
  provider: ExecutionProvider;
  fallbackToCpu: boolean;
  intraOpThreads: number;
  /** The size streams are served at (warm-up runs there and at its half); default: the model's native size. */
  servedResolution?: { width: number; height: number };
  /** false: convert pixels on the host instead of in graphs around the VAE (for before/after measurements). */
  pixelGraphs?: boolean;
  imageBlend?: ImageBlendPlacement;
}

/** One frame to restyle: the stream's settings for it and its pixels. */
export interface RunRequest extends RestyleSettings {
  type: 'run';
  id: number;
  streamId: string;
  width: number;
  height: number;
  /** Packed RGB24, transferred. */
  pixels: ArrayBuffer;
}

/** 'close' ends the thread after the run in progress (never during one). */
export type ToWorker = RunRequest | { type: 'release'; streamId: string } | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; provider: ExecutionProvider }
  | { type: 'init-error'; message: string }
  | { type: 'log'; level: 'info' | 'warn'; message: string }
  /** `pixels`: packed RGB24, a copy (the worker keeps its own buffers undetached). */
  | { type: 'result'; id: number; width: number; height: number; pixels: ArrayBuffer; stages: StageTiming[] }
  | { type: 'error'; id: number; message: string };
