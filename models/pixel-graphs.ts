// Pixels in, pixels out: the model folder's own VAE encoder and decoder, wrapped at load time in a few ONNX nodes
// so that the conversions around them run on the execution provider instead of the host; likewise the UNet, with
// the scheduler arithmetic of a denoising step (noising, x0 from the prediction) around it. The encoder graph takes
// the frame as it is (uint8 RGB, [1, H, W, 3]) and gives the scaled latent mean; the decoder graph takes a scaled
// latent and gives uint8 RGB back. Built in memory from the model's bytes at every load (no cache to invalidate,
// nothing written next to the model), so any diffusers/optimum export benefits; ./onnx-protobuf.ts does the bytes.
import {
  declaredValue,
  fieldsOf,
  initializer,
  node,
  OnnxType,
  ProtoWriter,
  stringOf,
  valueInfo,
  type DeclaredValue,
  type ProtoField,
} from './onnx-protobuf.js';

/** The wrapped graph's own input and output names (a prefix no exporter uses, so they cannot clash). */
export const IMAGE_INPUT = 'sds.image';
export const LATENT_OUTPUT = 'sds.latent';
export const LATENT_INPUT = 'sds.latent';
export const IMAGE_OUTPUT = 'sds.image';
const P = 'sds.pixels/';

/** Why a model cannot be wrapped; the caller falls back to converting on the host and says so once. */
export class PixelGraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PixelGraphError';
  }
}

interface ParsedModel {
  buf: Uint8Array;
  /** ModelProto fields other than the graph, copied as they are. */
  rest: ProtoField[];
  /** GraphProto fields. */
  graph: ProtoField[];
  inputs: DeclaredValue[];
  outputs: DeclaredValue[];
}

/** Below opset 11, Clip, Round and Slice take their bounds as attributes or do not exist. */
const MIN_OPSET = 11;

function parseModel(buf: Uint8Array): ParsedModel {
  const top = fieldsOf(buf);
  const graphField = top.find((f) => f.field === 7);
  if (!graphField) throw new PixelGraphError('the file has no graph');
  let opset = 0;
  for (const f of top.filter((f) => f.field === 8)) {
    const parts = fieldsOf(buf, f.valueStart, f.end);
    const domain = parts.find((p) => p.field === 1);
    const version = parts.find((p) => p.field === 2);
    const name = domain ? stringOf(buf, domain) : '';
    if ((name === '' || name === 'ai.onnx') && version) opset = version.varint;
  }
  if (opset < MIN_OPSET) throw new PixelGraphError(`its opset is ${opset}; wrapping needs ${MIN_OPSET} or later`);
  const graph = fieldsOf(buf, graphField.valueStart, graphField.end);
  const initializers = new Set<string>();
  for (const f of graph.filter((g) => g.field === 5)) {
    const parts = fieldsOf(buf, f.valueStart, f.end);
    // TensorProto.data_location 14: EXTERNAL (1) weights live in other files, which a session made from bytes cannot find.
    if (parts.some((p) => p.field === 14 && p.varint === 1)) throw new PixelGraphError('its weights are in external data files');
    const name = parts.find((p) => p.field === 8);
    if (name) initializers.add(stringOf(buf, name));
  }
  return {
    buf,
    rest: top.filter((f) => f.field !== 7),
    graph,
    // Older exports list their initializers as inputs too: those are not what the model is fed.
    inputs: graph
      .filter((f) => f.field === 11)
      .map((f) => declaredValue(buf, f))
      .filter((v) => !initializers.has(v.name)),
    outputs: graph.filter((f) => f.field === 12).map((f) => declaredValue(buf, f)),
  };
}

/** The value named one of `names` (first match), else the first. */
function pick(values: DeclaredValue[], names: readonly string[], what: string): DeclaredValue {
  const hit = names.map((n) => values.find((v) => v.name === n)).find((v) => v) ?? values[0];
  if (!hit) throw new PixelGraphError(`it declares no ${what}`);
  if (hit.elemType !== OnnxType.float && hit.elemType !== OnnxType.float16)
    throw new PixelGraphError(`its ${what} "${hit.name}" has element type ${hit.elemType}; expected float or float16`);
  return hit;
}

/** The model a graph wraps: the input its prefix nodes now produce, the output its suffix nodes consume. */
interface WrappedEnds {
  m: ParsedModel;
  input: DeclaredValue;
  output: DeclaredValue;
  half: boolean;
  outHalf: boolean;
}

function wrappedEnds(bytes: Uint8Array, inputNames: readonly string[], outputNames: readonly string[]): WrappedEnds {
  const m = parseModel(bytes);
  const input = pick(m.inputs, inputNames, 'input');
  const output = pick(m.outputs, outputNames, 'output');
  return { m, input, output, half: input.elemType === OnnxType.float16, outHalf: output.elemType === OnnxType.float16 };
}

interface Wrapping {
  prefix: ProtoWriter[];
  suffix: ProtoWriter[];
  initializers: ProtoWriter[];
  /** Declared where the replaced input and output were, so positional matching of the other inputs still holds. */
  inputs: ProtoWriter[];
  output: ProtoWriter;
}

function assemble({ m, input, output }: WrappedEnds, w: Wrapping): Uint8Array {
  const graph = new ProtoWriter();
  for (const n of w.prefix) graph.bytes(1, n);
  for (const f of m.graph) {
    if (f === input.field) for (const i of w.inputs) graph.bytes(11, i);
    else if (f === output.field) graph.bytes(12, w.output);
    else graph.raw(m.buf.subarray(f.start, f.end));
  }
  for (const n of w.suffix) graph.bytes(1, n);
  for (const i of w.initializers) graph.bytes(5, i);
  const model = new ProtoWriter();
  for (const f of m.rest) model.raw(m.buf.subarray(f.start, f.end));
  return model.bytes(7, graph).finish();
}

export interface VaeGraphOptions {
  /** The model's pixel value range, e.g. [-1, 1]. */
  pixelRange: readonly [number, number];
  scalingFactor: number;
  /** Latent channels: an encoder that outputs [mean; logvar] is sliced to the mean. */
  channels: number;
}

/**
 * vae_encoder bytes → a model that takes uint8 RGB [1, H, W, 3] as IMAGE_INPUT and gives the scaled latent mean
 * [1, C, H/8, W/8] in float32 as LATENT_OUTPUT. Throws PixelGraphError when the model cannot be wrapped.
 */
export function imageEncoderGraph(bytes: Uint8Array, o: VaeGraphOptions): Uint8Array {
  const ends = wrappedEnds(bytes, ['sample', 'pixel_values', 'images'], ['latent_parameters', 'latent_sample', 'latent_dist', 'latents']);
  const { input, output, half, outHalf } = ends;
  const [lo, hi] = o.pixelRange;
  const prefix = [
    node('Cast', [IMAGE_INPUT], [P + 'levels'], P + 'cast_in', { to: { int: OnnxType.float } }),
    node('Mul', [P + 'levels', P + 'step'], [P + 'scaled'], P + 'scale'),
    node('Add', [P + 'scaled', P + 'lo'], [P + 'ranged'], P + 'offset'),
    node('Transpose', [P + 'ranged'], [half ? P + 'nchw' : input.name], P + 'to_nchw', { perm: { ints: [0, 3, 1, 2] } }),
    ...(half ? [node('Cast', [P + 'nchw'], [input.name], P + 'to_half', { to: { int: OnnxType.float16 } })] : []),
  ];
  const raw = outHalf ? P + 'latent32' : output.name;
  const suffix = [
    ...(outHalf ? [node('Cast', [output.name], [raw], P + 'to_float', { to: { int: OnnxType.float } })] : []),
    node('Slice', [raw, P + 'zero', P + 'channels', P + 'axis1'], [P + 'mean'], P + 'mean'),
    node('Mul', [P + 'mean', P + 'sf'], [LATENT_OUTPUT], P + 'scale_latent'),
  ];
  return assemble(ends, {
    prefix,
    suffix,
    initializers: [
      initializer(P + 'step', 'float', [], [(hi - lo) / 255]),
      initializer(P + 'lo', 'float', [], [lo]),
      initializer(P + 'zero', 'int64', [1], [0]),
      initializer(P + 'channels', 'int64', [1], [o.channels]),
      initializer(P + 'axis1', 'int64', [1], [1]),
      initializer(P + 'sf', 'float', [], [o.scalingFactor]),
    ],
    inputs: [valueInfo(IMAGE_INPUT, OnnxType.uint8, [1, 'height', 'width', 3])],
    output: valueInfo(LATENT_OUTPUT, OnnxType.float, [1, o.channels, 'latent_height', 'latent_width']),
  });
}

/**
 * vae_decoder bytes → a model that takes a scaled float32 latent [1, C, h, w] as LATENT_INPUT and gives uint8 RGB
 * [1, 8h, 8w, 3] as IMAGE_OUTPUT: clamped, rounded half to even (as the host path's Uint8ClampedArray rounds).
 */
export function imageDecoderGraph(bytes: Uint8Array, o: VaeGraphOptions): Uint8Array {
  const ends = wrappedEnds(bytes, ['latent_sample', 'latents', 'z'], ['sample', 'images']);
  const { input, output, half, outHalf } = ends;
  const [lo, hi] = o.pixelRange;
  const prefix = [
    node('Mul', [LATENT_INPUT, P + 'inv_sf'], [half ? P + 'unscaled' : input.name], P + 'unscale'),
    ...(half ? [node('Cast', [P + 'unscaled'], [input.name], P + 'to_half', { to: { int: OnnxType.float16 } })] : []),
  ];
  const pixels = outHalf ? P + 'pixels32' : output.name;
  const suffix = [
    ...(outHalf ? [node('Cast', [output.name], [pixels], P + 'to_float', { to: { int: OnnxType.float } })] : []),
    node('Sub', [pixels, P + 'lo'], [P + 'shifted'], P + 'offset'),
    node('Mul', [P + 'shifted', P + 'per_level'], [P + 'levels'], P + 'scale'),
    node('Clip', [P + 'levels', P + 'min', P + 'max'], [P + 'clamped'], P + 'clamp'),
    node('Round', [P + 'clamped'], [P + 'rounded'], P + 'round'),
    node('Transpose', [P + 'rounded'], [P + 'nhwc'], P + 'to_nhwc', { perm: { ints: [0, 2, 3, 1] } }),
    node('Cast', [P + 'nhwc'], [IMAGE_OUTPUT], P + 'to_bytes', { to: { int: OnnxType.uint8 } }),
  ];
  return assemble(ends, {
    prefix,
    suffix,
    initializers: [
      initializer(P + 'inv_sf', 'float', [], [1 / o.scalingFactor]),
      initializer(P + 'lo', 'float', [], [lo]),
      initializer(P + 'per_level', 'float', [], [255 / (hi - lo)]),
      initializer(P + 'min', 'float', [], [0]),
      initializer(P + 'max', 'float', [], [255]),
    ],
    inputs: [valueInfo(LATENT_INPUT, OnnxType.float, [1, o.channels, 'latent_height', 'latent_width'])],
    output: valueInfo(IMAGE_OUTPUT, OnnxType.uint8, [1, 'height', 'width', 3]),
  });
}

/** The denoiser step graph's own inputs and output (the UNet's other inputs keep their names). */
export const STEP_X0 = 'sds.x0';
export const STEP_NOISE = 'sds.noise';
export const STEP_NOISE_SCALES = 'sds.noise_scales';
export const STEP_X0_ESTIMATE = 'sds.x0_estimate';

export interface DenoiserGraphOptions {
  predictionType: 'epsilon' | 'v_prediction' | 'sample';
  channels: number;
}

/**
 * unet bytes → a model for one denoising step around it: it takes the clean latent x0, the stream's noise and
 * [√ᾱ, √(1−ᾱ)] (all float32), noises x0 to x_t, runs the UNet (in its own float type) and gives the x0 estimate in
 * float32, as models/scheduler.ts addNoise and predictX0 do on the host. The UNet's other inputs (timestep,
 * conditioning, SDXL's extras) are fed as before. Multi-step: the next step takes the (guided) estimate as its x0.
 */
export function denoiserStepGraph(bytes: Uint8Array, o: DenoiserGraphOptions): Uint8Array {
  const ends = wrappedEnds(bytes, ['sample', 'latent_model_input', 'x'], ['out_sample', 'noise_pred', 'sample']);
  const { input, output, half, outHalf } = ends;
  const xt = half ? P + 'xt' : input.name;
  const prefix = [
    node('Gather', [STEP_NOISE_SCALES, P + 'i0'], [P + 'a'], P + 'sqrt_alpha_bar'),
    node('Gather', [STEP_NOISE_SCALES, P + 'i1'], [P + 's'], P + 'sqrt_one_minus_alpha_bar'),
    node('Mul', [STEP_X0, P + 'a'], [P + 'ax0'], P + 'scale_x0'),
    node('Mul', [STEP_NOISE, P + 's'], [P + 'snoise'], P + 'scale_noise'),
    node('Add', [P + 'ax0', P + 'snoise'], [xt], P + 'add_noise'),
    ...(half ? [node('Cast', [xt], [input.name], P + 'to_half', { to: { int: OnnxType.float16 } })] : []),
  ];
  const raw = outHalf ? P + 'prediction32' : output.name;
  const prediction = P + 'prediction';
  const suffix = [
    ...(outHalf ? [node('Cast', [output.name], [raw], P + 'to_float', { to: { int: OnnxType.float } })] : []),
    // Only the latent's channels (an export with learned variance has twice as many), as predictX0 reads them.
    node('Slice', [raw, P + 'zero', P + 'channels', P + 'axis1'], [prediction], P + 'latent_channels'),
  ];
  if (o.predictionType === 'epsilon') {
    // x0 = (x_t − √(1−ᾱ)·ε) / √ᾱ
    suffix.push(
      node('Mul', [prediction, P + 's'], [P + 'seps'], P + 'scale_eps'),
      node('Sub', [xt, P + 'seps'], [P + 'diff'], P + 'remove_noise'),
      node('Div', [P + 'diff', P + 'a'], [STEP_X0_ESTIMATE], P + 'x0'),
    );
  } else if (o.predictionType === 'v_prediction') {
    // x0 = √ᾱ·x_t − √(1−ᾱ)·v
    suffix.push(
      node('Mul', [xt, P + 'a'], [P + 'axt'], P + 'scale_xt'),
      node('Mul', [prediction, P + 's'], [P + 'sv'], P + 'scale_v'),
      node('Sub', [P + 'axt', P + 'sv'], [STEP_X0_ESTIMATE], P + 'x0'),
    );
  } else {
    suffix.push(node('Identity', [prediction], [STEP_X0_ESTIMATE], P + 'x0'));
  }
  const latent = (name: string) => valueInfo(name, OnnxType.float, ['batch', o.channels, 'latent_height', 'latent_width']);
  return assemble(ends, {
    prefix,
    suffix,
    initializers: [
      initializer(P + 'i0', 'int64', [], [0]),
      initializer(P + 'i1', 'int64', [], [1]),
      initializer(P + 'zero', 'int64', [1], [0]),
      initializer(P + 'channels', 'int64', [1], [o.channels]),
      initializer(P + 'axis1', 'int64', [1], [1]),
    ],
    inputs: [latent(STEP_X0), latent(STEP_NOISE), valueInfo(STEP_NOISE_SCALES, OnnxType.float, [2])],
    output: latent(STEP_X0_ESTIMATE),
  });
}
