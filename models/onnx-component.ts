// One ONNX model file as a typed component. Input/output names, element types and shapes come from the
// session metadata at load time (never hard-coded), so diffusers/optimum exports load unchanged; roles
// (sample, timestep, ...) are matched by name with positional fallbacks. float16 models are fed and read
// through ./float16.ts.
import ort from 'onnxruntime-node';
import type { LineLog } from '../frame/log.js';
import type { ExecutionProvider } from './restyle-types.js';
import { float16ToFloat32, float32ToFloat16 } from './float16.js';

export interface SessionConfig {
  provider: ExecutionProvider;
  /** If the provider cannot create a session: true → log one line and use CPU; false → throw. */
  fallbackToCpu: boolean;
  intraOpThreads: number;
  logger?: LineLog;
}

export interface TensorSpec {
  name: string;
  type: string;
  /** Declared dims; symbolic ones are strings (or -1). */
  shape: readonly (number | string)[];
}

export class ModelComponentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelComponentError';
  }
}

function specsOf(meta: readonly ort.InferenceSession.ValueMetadata[], names: readonly string[]): TensorSpec[] {
  return names.map((name, i) => {
    const m = meta.find((x) => x.name === name) ?? meta[i];
    if (m && m.isTensor) return { name, type: m.type, shape: m.shape };
    return { name, type: 'unknown', shape: [] };
  });
}

/** A loaded ONNX session plus its declared inputs/outputs and the provider it actually runs on. */
export class OnnxComponent {
  readonly inputs: TensorSpec[];
  readonly outputs: TensorSpec[];

  private constructor(
    readonly path: string,
    readonly session: ort.InferenceSession,
    readonly provider: ExecutionProvider,
  ) {
    this.inputs = specsOf(session.inputMetadata, session.inputNames);
    this.outputs = specsOf(session.outputMetadata, session.outputNames);
  }

  /** `bytes`: a model built from the file at `path` (a pixel graph around it) to load instead; `path` names it in messages. */
  static async load(path: string, config: SessionConfig, bytes?: Uint8Array): Promise<OnnxComponent> {
    const create = (o: ort.InferenceSession.SessionOptions) =>
      bytes ? ort.InferenceSession.create(bytes, o) : ort.InferenceSession.create(path, o);
    const options = (provider: ExecutionProvider): ort.InferenceSession.SessionOptions => ({
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: config.intraOpThreads,
      interOpNumThreads: 1,
      // The pipeline runs several small sessions back to back. With spinning on, one session's idle
      // pool threads keep spinning while the next session runs, stealing its cores: on 2 cores that
      // doubled the frame's model time (18.9 → 8.2 ms median measured for the default model).
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    });
    try {
      return new OnnxComponent(path, await create(options(config.provider)), config.provider);
    } catch (err) {
      const why = (err as Error).message.split('\n')[0];
      if (config.provider === 'cpu') throw new ModelComponentError(`cannot load ${path}: ${why}`);
      if (!config.fallbackToCpu)
        throw new ModelComponentError(`execution provider "${config.provider}" failed for ${path}: ${why} (CPU fallback is disabled)`);
      config.logger?.warn(`execution provider "${config.provider}" unavailable for ${path} (${why}); falling back to CPU`);
      try {
        return new OnnxComponent(path, await create(options('cpu')), 'cpu');
      } catch (err2) {
        throw new ModelComponentError(`cannot load ${path}: ${(err2 as Error).message.split('\n')[0]}`);
      }
    }
  }

  /** The input named one of `names` (first match wins), else the input at `position`. */
  input(names: readonly string[], position?: number): TensorSpec | undefined {
    for (const n of names) {
      const hit = this.inputs.find((s) => s.name === n);
      if (hit) return hit;
    }
    return position === undefined ? undefined : this.inputs[position];
  }

  output(names: readonly string[], position?: number): TensorSpec | undefined {
    for (const n of names) {
      const hit = this.outputs.find((s) => s.name === n);
      if (hit) return hit;
    }
    return position === undefined ? undefined : this.outputs[position];
  }

  require(kind: 'input' | 'output', names: readonly string[], position?: number): TensorSpec {
    const spec = kind === 'input' ? this.input(names, position) : this.output(names, position);
    if (!spec) {
      const have = (kind === 'input' ? this.inputs : this.outputs).map((s) => s.name).join(', ');
      throw new ModelComponentError(`${this.path}: no ${kind} named ${names.join(' or ')} (has: ${have || 'none'})`);
    }
    return spec;
  }

  async run(feeds: Record<string, ort.Tensor>, outputs: readonly TensorSpec[]): Promise<Record<string, ort.Tensor>> {
    return this.session.run(
      feeds,
      outputs.map((o) => o.name),
    );
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** The float element types a model's tensors come in; float16 data is the raw half bits (Node 20 and 22 have no Float16Array). */
export type FloatTensorType = 'float32' | 'float16';
export type FloatTensorData = Float32Array | Uint16Array;

/** The float type an input takes (an undeclared type is fed float32). */
export function floatTypeOf(spec: TensorSpec): FloatTensorType {
  if (spec.type === 'float16') return 'float16';
  if (spec.type === 'float32' || spec.type === 'unknown') return 'float32';
  throw new ModelComponentError(`input ${spec.name} has type ${spec.type}; expected float32 or float16`);
}

/** A float tensor in the spec's declared element type; half bits (Uint16Array) are taken as they are. */
export function floatTensor(spec: TensorSpec, data: FloatTensorData, dims: readonly number[]): ort.Tensor {
  const type = floatTypeOf(spec);
  if (type === 'float16') return float16Tensor(data instanceof Uint16Array ? data : float32ToFloat16(data), dims);
  if (data instanceof Uint16Array) throw new ModelComponentError(`input ${spec.name} is float32; got float16 bits`);
  return new ort.Tensor('float32', data, dims);
}

/**
 * A float16 tensor over half bits, fed as they are. Where the runtime has a global Float16Array (Node 24),
 * onnxruntime-common wraps the bits in one, which onnxruntime-node's binding cannot read (it sees 0 bytes and
 * refuses the run): the tensor keeps the Uint16Array instead — the same bytes, the form the binding reads.
 */
export function float16Tensor(bits: Uint16Array, dims: readonly number[]): ort.Tensor {
  const tensor = new ort.Tensor('float16', bits, dims);
  if (!(tensor.data instanceof Uint16Array)) (tensor as unknown as { cpuData: Uint16Array }).cpuData = bits;
  return tensor;
}

/** A float tensor's data as the model produced it: float32, or float16 as half bits. */
export function readFloatData(tensor: ort.Tensor): FloatTensorData {
  if (tensor.type === 'float16') return halfBits(tensor.data);
  return readFloat(tensor);
}

/**
 * A float16 tensor's raw half bits. Where the runtime has a global Float16Array (Node 24), ort stores float16 data
 * in one, even data handed to it as Uint16Array bits: view the same bytes, so float16 stays on the half-bits path.
 */
function halfBits(data: unknown): Uint16Array {
  if (data instanceof Uint16Array) return data;
  if (ArrayBuffer.isView(data) && (data as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT === 2)
    return new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
  throw new ModelComponentError('a float16 output holds neither Uint16Array nor Float16Array data');
}

/** A tensor's data as float32, whatever float type the model produced. */
export function readFloat(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') {
    // ort may hand back Uint16Array bits, or Float16Array where the runtime has it: both are the same half bits.
    return float16ToFloat32(halfBits(tensor.data));
  }
  throw new ModelComponentError(`output has type ${tensor.type}; expected float32 or float16`);
}

/** A scalar value in the declared type and rank of `spec` (rank 0 → [], rank 1 → [batch]). */
export function scalarTensor(spec: TensorSpec, value: number, batch = 1): ort.Tensor {
  const rank = spec.shape.length;
  const dims = rank === 0 ? [] : [batch, ...new Array<number>(rank - 1).fill(1)];
  const n = rank === 0 ? 1 : batch;
  switch (spec.type) {
    case 'int64':
      return new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: n }, () => BigInt(Math.round(value))),
        dims,
      );
    case 'int32':
      return new ort.Tensor(
        'int32',
        Int32Array.from({ length: n }, () => Math.round(value)),
        dims,
      );
    case 'float16':
      return float16Tensor(float32ToFloat16(new Float32Array(n).fill(value)), dims);
    case 'float32':
    case 'unknown':
      return new ort.Tensor('float32', new Float32Array(n).fill(value), dims);
    default:
      throw new ModelComponentError(`input ${spec.name} has type ${spec.type}; expected a float or int64 timestep`);
  }
}

/** Declared dim at `axis`, or `fallback` where it is symbolic/dynamic. */
export function dimOr(spec: TensorSpec, axis: number, fallback: number): number {
  const d = spec.shape[axis];
  return typeof d === 'number' && d > 0 ? d : fallback;
}
