// One CLIP text encoder (an ONNX CLIPTextModel or CLIPTextModelWithProjection) with its own tokenizer:
// prompt → the per-token hidden states of the layer the model family conditions on, plus the projected
// pooled embedding where the export has one (SDXL's text_encoder_2: `text_embeds`). Outputs are found by
// name, so optimum's exports (last_hidden_state, pooler_output / text_embeds, hidden_states.0 … N) load as-is.
import ort from 'onnxruntime-node';
import { ClipTokenizer } from './clip-tokenizer.js';
import { OnnxComponent, readFloat, type SessionConfig, type TensorSpec } from './onnx-component.js';

/**
 * Which hidden states condition the denoiser: the final (layer-normed) one, as SD 1.x/2.x use, or the
 * second-to-last layer's output, diffusers' `hidden_states[-2]`, as SDXL uses for both its encoders.
 */
export type HiddenLayer = 'last' | 'penultimate';

export interface ClipTextOutput {
  /** [tokens × dim], flattened. */
  hidden: Float32Array;
  tokens: number;
  dim: number;
  /** The projected pooled embedding (`text_embeds`), when the model has that output. */
  pooled?: Float32Array;
}

/** optimum names them hidden_states.0 (the embeddings) … hidden_states.N (the last layer's output). */
const HIDDEN_STATE_OUTPUT = /^hidden_states[._](\d+)$/;

export class ClipTextModel {
  private readonly ids: TensorSpec;
  private readonly hidden: TensorSpec;
  private readonly pooledOut: TensorSpec | undefined;

  private constructor(
    private readonly component: OnnxComponent,
    readonly tokenizer: ClipTokenizer,
    layer: HiddenLayer,
    warn: (message: string) => void,
  ) {
    this.ids = component.require('input', ['input_ids'], 0);
    const last = (): TensorSpec => component.require('output', ['last_hidden_state', 'hidden_states', 'text_embeds'], 0);
    if (layer === 'penultimate') {
      const penultimate = penultimateHiddenState(component.outputs);
      if (!penultimate)
        warn(
          `${component.path}: no hidden_states.* outputs, so its last_hidden_state stands in for the penultimate layer ` +
            `SDXL conditions on (re-export the text encoders with their hidden states, as optimum-cli does for SDXL)`,
        );
      this.hidden = penultimate ?? last();
    } else this.hidden = last();
    // Only the projection: CLIPTextModel's pooler_output is the unprojected state, not what SDXL's UNet takes.
    this.pooledOut = component.output(['text_embeds']);
  }

  static async load(onnxPath: string, tokenizerDir: string, layer: HiddenLayer, config: SessionConfig): Promise<ClipTextModel> {
    const component = await OnnxComponent.load(onnxPath, config);
    return new ClipTextModel(component, ClipTokenizer.load(tokenizerDir), layer, (m) => config.logger?.warn(m));
  }

  /** The name of the output used as the hidden states (for logs and tests). */
  get hiddenOutput(): string {
    return this.hidden.name;
  }

  get hasPooled(): boolean {
    return this.pooledOut !== undefined;
  }

  async encode(prompt: string): Promise<ClipTextOutput> {
    const ids = this.tokenizer.encode(prompt);
    const tensor =
      this.ids.type === 'int64'
        ? new ort.Tensor(
            'int64',
            BigInt64Array.from(ids, (v) => BigInt(v)),
            [1, ids.length],
          )
        : new ort.Tensor('int32', ids, [1, ids.length]);
    const wanted = this.pooledOut ? [this.hidden, this.pooledOut] : [this.hidden];
    const res = await this.component.run({ [this.ids.name]: tensor }, wanted);
    const h = res[this.hidden.name]!;
    const [, tokens, dim] = h.dims as number[];
    return {
      // Copies: the cache outlives the session's output buffers.
      hidden: readFloat(h).slice(),
      tokens: tokens!,
      dim: dim!,
      pooled: this.pooledOut ? readFloat(res[this.pooledOut.name]!).slice() : undefined,
    };
  }

  release(): Promise<void> {
    return this.component.release();
  }
}

/** hidden_states.{N-1} of hidden_states.0 … N, or undefined when there are fewer than two. */
function penultimateHiddenState(outputs: readonly TensorSpec[]): TensorSpec | undefined {
  const numbered = outputs
    .map((spec) => ({ spec, index: Number(HIDDEN_STATE_OUTPUT.exec(spec.name)?.[1] ?? NaN) }))
    .filter((o) => Number.isInteger(o.index))
    .sort((a, b) => a.index - b.index);
  if (numbered.length < 2) return undefined;
  const top = numbered[numbered.length - 1]!.index;
  return numbered.find((o) => o.index === top - 1)?.spec;
}
