// The little of ONNX's protobuf encoding that wrapping a model in extra nodes needs: walking a message's fields
// without decoding them (so a 100 MB VAE's weights are sliced, never parsed), and writing nodes, initializers and
// graph inputs/outputs. Field numbers are onnx.proto's; nothing here knows what a VAE is (see ./pixel-graphs.ts).

/** One field of a message: its number, wire type, and where its value lies in the buffer. */
export interface ProtoField {
  field: number;
  wire: number;
  /** The whole field, key included: slice [start, end) to copy it as it is. */
  start: number;
  end: number;
  /** Length-delimited value bounds, or the varint's value. */
  valueStart: number;
  varint: number;
}

export class OnnxProtoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxProtoError';
  }
}

function readVarint(buf: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    const b = buf[i]!;
    value += (b & 0x7f) * scale;
    scale *= 128;
    if (b < 0x80) return [value, i + 1];
  }
  throw new OnnxProtoError(`truncated varint at byte ${at}`);
}

/** The fields of the message in buf[start, end), in order. */
export function fieldsOf(buf: Uint8Array, start = 0, end = buf.length): ProtoField[] {
  const out: ProtoField[] = [];
  let at = start;
  while (at < end) {
    const [key, afterKey] = readVarint(buf, at);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    let valueStart = afterKey;
    let next: number;
    let varint = 0;
    if (wire === 0) [varint, next] = readVarint(buf, afterKey);
    else if (wire === 1) next = afterKey + 8;
    else if (wire === 5) next = afterKey + 4;
    else if (wire === 2) {
      const [length, lengthEnd] = readVarint(buf, afterKey);
      valueStart = lengthEnd;
      next = lengthEnd + length;
    } else throw new OnnxProtoError(`unsupported wire type ${wire} at byte ${at}`);
    if (next > end) throw new OnnxProtoError(`field ${field} at byte ${at} runs past its message`);
    out.push({ field, wire, start: at, end: next, valueStart, varint });
    at = next;
  }
  return out;
}

export function stringOf(buf: Uint8Array, f: ProtoField): string {
  return new TextDecoder().decode(buf.subarray(f.valueStart, f.end));
}

/** The first field numbered `n` of the message in buf[start, end), if any. */
export function firstField(buf: Uint8Array, n: number, start: number, end: number): ProtoField | undefined {
  return fieldsOf(buf, start, end).find((f) => f.field === n);
}

// ---- writing ----

/** A message being written: a list of byte chunks (large copied fields stay views of the source buffer). */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  length = 0;

  private push(bytes: Uint8Array): this {
    this.chunks.push(bytes);
    this.length += bytes.length;
    return this;
  }

  private varintBytes(value: number): Uint8Array {
    const out: number[] = [];
    if (value < 0) {
      // int64 negatives are ten bytes of two's complement.
      let v = BigInt.asUintN(64, BigInt(value));
      for (let i = 0; i < 10; i++, v >>= 7n) out.push(Number(v & 0x7fn) | (i < 9 ? 0x80 : 0));
      return Uint8Array.from(out);
    }
    let v = value;
    while (v >= 0x80) {
      out.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(v);
    return Uint8Array.from(out);
  }

  varint(field: number, value: number): this {
    return this.push(this.varintBytes(field * 8)).push(this.varintBytes(value));
  }

  bytes(field: number, value: Uint8Array | ProtoWriter): this {
    const body = value instanceof ProtoWriter ? value.finish() : value;
    return this.push(this.varintBytes(field * 8 + 2))
      .push(this.varintBytes(body.length))
      .push(body);
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  float(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    return this.push(this.varintBytes(field * 8 + 5)).push(b);
  }

  /** Copies a field read from another message as it is. */
  raw(bytes: Uint8Array): this {
    return this.push(bytes);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

// ---- ONNX messages ----

/** onnx.proto TensorProto.DataType values this project writes or reads. */
export const OnnxType = { float: 1, uint8: 2, int64: 7, float16: 10 } as const;

export type AttributeValue = { int: number } | { ints: readonly number[] } | { string: string };

/** NodeProto: input 1, output 2, name 3, op_type 4, attribute 5. */
export function node(
  op: string,
  inputs: readonly string[],
  outputs: readonly string[],
  name: string,
  attributes: Record<string, AttributeValue> = {},
): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of inputs) w.string(1, i);
  for (const o of outputs) w.string(2, o);
  w.string(3, name).string(4, op);
  for (const [attr, value] of Object.entries(attributes)) {
    // AttributeProto: name 1, i 3, s 4, ints 8, type 20 (INT 2, STRING 3, INTS 7).
    const a = new ProtoWriter().string(1, attr);
    if ('int' in value) a.varint(3, value.int).varint(20, 2);
    else if ('string' in value) a.string(4, value.string).varint(20, 3);
    else {
      for (const v of value.ints) a.varint(8, v);
      a.varint(20, 7);
    }
    w.bytes(5, a);
  }
  return w;
}

/** TensorProto initializer: dims 1, data_type 2, name 8, raw_data 9 (little-endian). */
export function initializer(name: string, type: 'float' | 'int64', dims: readonly number[], values: readonly number[]): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of dims) w.varint(1, d);
  w.varint(2, OnnxType[type]).string(8, name);
  const raw =
    type === 'float' ? new Uint8Array(Float32Array.from(values).buffer) : new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer);
  return w.bytes(9, raw);
}

/** ValueInfoProto (name 1, type 2 → TypeProto.tensor_type 1 → elem_type 1, shape 2 → dim 1 → dim_value 1 | dim_param 2). */
export function valueInfo(name: string, elemType: number, dims: readonly (number | string)[]): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of dims) shape.bytes(1, typeof d === 'number' ? new ProtoWriter().varint(1, d) : new ProtoWriter().string(2, d));
  const tensor = new ProtoWriter().varint(1, elemType).bytes(2, shape);
  return new ProtoWriter().string(1, name).bytes(2, new ProtoWriter().bytes(1, tensor));
}

/** A graph input or output as declared: its name and element type (0 where the file does not say). */
export interface DeclaredValue {
  name: string;
  elemType: number;
  field: ProtoField;
}

export function declaredValue(buf: Uint8Array, f: ProtoField): DeclaredValue {
  let name = '';
  let elemType = 0;
  for (const g of fieldsOf(buf, f.valueStart, f.end)) {
    if (g.field === 1) name = stringOf(buf, g);
    if (g.field !== 2) continue;
    const tensor = firstField(buf, 1, g.valueStart, g.end);
    const elem = tensor && firstField(buf, 1, tensor.valueStart, tensor.end);
    if (elem) elemType = elem.varint;
  }
  return { name, elemType, field: f };
}
