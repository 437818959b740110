// IEEE 754 half-precision conversion for float16 ONNX models. Node 20 and 22 have no Float16Array, and
// onnxruntime-node takes the raw half bits in a Uint16Array for 'float16' tensors (on Node 24 it keeps them in a
// Float16Array over the same bytes; models/onnx-component.ts reads either).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** One float32 → float16 bits, round to nearest even; overflow → ±Infinity, NaN stays NaN. */
export function toFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // Inf / NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit-1 mantissa into place, rounding to nearest even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (m & 1) === 1)) m += 1;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1) === 1)) {
    m += 1;
    if (m === 0x400) {
      m = 0;
      e += 1;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

/** float16 bits → number. */
export function fromFloat16Bits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

// The array conversions run on every float16 model's image in and out (786,432 values at 512×512), so they
// work on the raw bits without a call per value: a per-value toFloat16Bits/fromFloat16Bits took 7 and 30 ms here.

const F32_INFINITY_BITS = 0x7f800000;
/** 65536.0: the first float32 whose half rounds past the largest finite half's exponent. */
const F16_OVERFLOW_BITS = (127 + 16) << 23;
/** Below 2^-14 the half is subnormal. */
const F16_MIN_NORMAL_BITS = 113 << 23;
/** 0.5: adding it lines a subnormal half's mantissa up with float32's, rounding to nearest even in the FPU. */
const DENORMAL_MAGIC_BITS = (127 - 15 + 23 - 10 + 1) << 23;
const magicF32 = new Float32Array(1);
new Uint32Array(magicF32.buffer)[0] = DENORMAL_MAGIC_BITS;
const DENORMAL_MAGIC = magicF32[0]!;

/** float32 → float16 bits, round to nearest even, same results as toFloat16Bits (tested bit for bit). */
export function float32ToFloat16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const abs = x & 0x7fffffff;
    let h: number;
    if (abs >= F16_OVERFLOW_BITS) {
      h = abs > F32_INFINITY_BITS ? 0x7e00 : 0x7c00; // NaN stays NaN; overflow → Infinity
    } else if (abs < F16_MIN_NORMAL_BITS) {
      f32[0] = Math.abs(src[i]!) + DENORMAL_MAGIC; // the FPU rounds the subnormal mantissa to nearest even
      h = u32[0]! - DENORMAL_MAGIC_BITS;
    } else {
      // Rebias the exponent and round the 13 dropped mantissa bits to nearest even; a carry out of the
      // mantissa correctly bumps the exponent (up to Infinity).
      h = (abs + ((15 - 127) << 23) + 0xfff + ((abs >>> 13) & 1)) >>> 13;
    }
    out[i] = sign | h;
  }
  return out;
}

let halfToFloatTable: Float32Array | undefined;

/** float16 bits → float32 through a 65,536-entry table (256 KiB, built on first use). */
export function float16ToFloat32(src: Uint16Array): Float32Array {
  if (!halfToFloatTable) {
    halfToFloatTable = new Float32Array(0x10000);
    for (let b = 0; b < 0x10000; b++) halfToFloatTable[b] = fromFloat16Bits(b);
  }
  const table = halfToFloatTable;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return out;
}
