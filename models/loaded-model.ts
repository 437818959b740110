// A model folder loaded for inference on the calling thread: its ONNX components, noise schedule,
// named-style table and (text models) text encoder, and the conditioning a request asks for. What
// runs per frame with per-stream state is realtime/stream-restyler.ts; this is what all streams share.
import type { StageTiming } from '../frame/video-frame.js';
import { nowMs } from '../frame/clock.js';
import { loadComponents, type DiffusionComponents } from './diffusion-components.js';
import { ConditioningTable, type ConditioningEmbeds, type StyleBlend } from './conditioning.js';
import { loadManifest, type ModelManifest } from './manifest.js';
import type { LineLog } from '../frame/log.js';
import type { ExecutionProvider, ImageBlendPlacement, PromptPart } from './restyle-types.js';
import { ImageBlendGraph } from './image-blend-graph.js';
import { NoiseSchedule } from './scheduler.js';
import type { TextEncoder } from './text-encoder.js';

export interface LoadModelOptions {
  provider: ExecutionProvider;
  fallbackToCpu: boolean;
  intraOpThreads: number;
  /** Wrap the VAE in pixel graphs (default true). */
  pixelGraphs?: boolean;
  /** Where consistency's image warp and blend runs (default auto: the graph on a GPU provider, else the host). */
  imageBlend?: ImageBlendPlacement;
  logger: LineLog;
}

type TextModule = typeof import('./text-encoder.js');

export class LoadedModel {
  private constructor(
    readonly manifest: ModelManifest,
    readonly schedule: NoiseSchedule,
    readonly components: DiffusionComponents,
    private readonly styles: ConditioningTable,
    private readonly text: { module: TextModule; encoder: TextEncoder } | undefined,
    /** Consistency's image warp and blend on the execution provider; undefined: the host does it. */
    readonly imageBlend: ImageBlendGraph | undefined,
  ) {}

  static async load(modelDir: string, opts: LoadModelOptions): Promise<LoadedModel> {
    const manifest = loadManifest(modelDir);
    const components = await loadComponents(manifest, opts);
    const placement = opts.imageBlend ?? 'auto';
    const imageBlend =
      placement === 'graph' || (placement === 'auto' && components.provider !== 'cpu')
        ? await ImageBlendGraph.load({
            provider: components.provider,
            fallbackToCpu: true,
            intraOpThreads: opts.intraOpThreads,
            logger: opts.logger,
          })
        : undefined;
    // Text models encode their prompts here (once per distinct prompt: cached); a text model exported
    // without its text encoder runs unconditioned, which the log says once. The text module is loaded only
    // for such a model, so a style model (and a GPU bundle without the tokenizer package) never needs it.
    // SDXL has a second encoder with its own tokenizer; either pair is enough to encode prompts.
    const c = manifest.components;
    const hasTextEncoder = (c.text_encoder && c.tokenizer) || (c.text_encoder_2 && c.tokenizer_2);
    let text: { module: TextModule; encoder: TextEncoder } | undefined;
    if (manifest.conditioning.kind === 'text' && hasTextEncoder) {
      const module = await import('./text-encoder.js');
      const sessionConfig = {
        provider: components.provider,
        fallbackToCpu: true,
        intraOpThreads: opts.intraOpThreads,
        logger: opts.logger,
      };
      text = { module, encoder: await module.TextEncoder.load(manifest, sessionConfig, components.denoiser) };
    }
    if (manifest.conditioning.kind === 'text' && !text)
      opts.logger.warn(`${manifest.name}: no text_encoder/tokenizer in the model folder; prompts are ignored`);
    return new LoadedModel(manifest, new NoiseSchedule(manifest.scheduler), components, new ConditioningTable(manifest), text, imageBlend);
  }

  get provider(): ExecutionProvider {
    return this.components.provider;
  }

  /** The denoiser's conditioning: the prompt mix for a text model with its encoder, else the (blended) style. */
  async condition(style: string | StyleBlend, prompt: readonly PromptPart[], stages: StageTiming[]): Promise<ConditioningEmbeds> {
    const { contextTokens, contextDim } = this.components.denoiser;
    if (!this.text) return this.styles.embedding(style, contextTokens, contextDim);
    const start = nowMs();
    const embedding = await this.text.module.blendPrompts(this.text.encoder, prompt);
    stages.push({ name: 'text_encode', startMs: start, endMs: nowMs() });
    return embedding;
  }
}
