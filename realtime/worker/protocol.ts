// Messages between ModelRuntime (main thread) and an inference worker. Pixels travel as ArrayBuffers,
// never as JSON arrays: transferred to the worker, copied back (see serve-inference.ts for why).
import type { StageTiming } from '../../frame/video-frame.js';
import type { ExecutionProvider, ImageBlendPlacement } from '../../models/restyle-types.js';
import type { StyleBlend } from '../../models/conditioning.js';
import type { PromptPart, SeedPart } from '../params.js';

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

export interface RunRequest {
  type: 'run';
  id: number;
  streamId: string;
  width: number;
  height: number;
  /** Packed RGB24, transferred. */
  pixels: ArrayBuffer;
  style: string | StyleBlend;
  /** Text models: the prompt(s) to condition on, weighted (one part of weight 1 for a plain prompt). */
  prompt: PromptPart[];
  strength: number;
  steps: number;
  seed: number;
  seedBlend?: SeedPart[];
  /** Temporal consistency 0..1 (0: every frame independent, bit for bit). */
  consistency: number;
  scale: 1 | 0.5;
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
