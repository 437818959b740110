// The contract between the per-stream engine (realtime/) and the model runtime (models/).
// The engine sends one model-resolution RGB frame and the stream's parameters; the runtime runs
// encode → denoise ×steps → decode on a worker thread and returns RGB plus the stages it timed.
import type { RgbImage, StageTiming } from '../frame/video-frame.js';
import type { StyleBlend } from './conditioning.js';

export type ExecutionProvider = 'cpu' | 'cuda' | 'webgpu';

/**
 * Where temporal consistency warps and blends the previous output image: on the host, in a GridSample graph on the
 * execution provider, or auto (the graph off the CPU: onnxruntime's CPU GridSample is slower than the host loop).
 */
export type ImageBlendPlacement = 'auto' | 'host' | 'graph';

export interface RestyleRequest {
  /** Stream identity: the worker keeps per-stream state (fixed noise, caches) under this key. */
  streamId: string;
  /** Model-resolution input; its buffer is transferred to the worker (the caller must not reuse it). */
  image: RgbImage;
  /** Conditioning: a named style (style models) or a prompt (text models). */
  style: string;
  /** A style change in progress: the runtime conditions on this blend instead of `style`. */
  styleBlend?: StyleBlend;
  prompt: string;
  /** Text models: a weighted mix of prompts (a blend, or a prompt change in progress) instead of `prompt`. */
  promptBlend?: PromptPart[];
  strength: number;
  steps: number;
  seed: number;
  /** A weighted mix of seeds' noise instead of `seed`. */
  seedBlend?: SeedPart[];
  consistency: number;
  /** 0.5 runs the model at half width and height and scales the result back (deadline degradation). */
  scale?: 1 | 0.5;
}

export interface RestyleResult {
  image: RgbImage;
  /** Stages measured inside the worker (preprocess, vae_encode, denoise, vae_decode, postprocess). */
  stages: StageTiming[];
}

/** What the engine needs from a loaded model runtime. */
export interface Restyler {
  readonly info: RestylerInfo;
  restyle(request: RestyleRequest): Promise<RestyleResult>;
  /** Forget a stream's per-stream state in the workers (called when a session closes). */
  releaseStream(streamId: string): void;
  /** Requests waiting for or running in a worker (a metrics gauge). */
  readonly queueDepth: number;
  /** Fraction of recent time the workers were busy (0..1), measured; for admission control. */
  utilization(): number;
  close(): Promise<void>;
}

export interface RestylerInfo {
  name: string;
  /** Native input/output resolution the engine scales frames to. */
  width: number;
  height: number;
  styles: readonly string[];
  /** Human-readable names of the styles, by id (optional). */
  styleLabels?: Readonly<Record<string, string>>;
  steps: readonly number[];
  conditioning: 'styles' | 'text';
  defaults: { style: string; strength: number; steps: number };
  provider: ExecutionProvider;
  workers: number;
}

/** One prompt of a weighted mix (text models). */
export interface PromptPart {
  prompt: string;
  weight: number;
}

/** One seed of a weighted mix of fixed-noise tensors. */
export interface SeedPart {
  seed: number;
  weight: number;
}
