import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import { float16ToFloat32, float32ToFloat16, fromFloat16Bits, toFloat16Bits } from '../../models/float16.js';
import { readFloat, readFloatData } from '../../models/onnx-component.js';

describe('float16', () => {
  it('encodes known values to their IEEE half bits', () => {
    assert.equal(toFloat16Bits(0), 0x0000);
    assert.equal(toFloat16Bits(-0), 0x8000);
    assert.equal(toFloat16Bits(1), 0x3c00);
    assert.equal(toFloat16Bits(-2), 0xc000);
    assert.equal(toFloat16Bits(0.5), 0x3800);
    assert.equal(toFloat16Bits(65504), 0x7bff); // max half
    assert.equal(toFloat16Bits(2 ** -24), 0x0001); // smallest subnormal
    assert.equal(toFloat16Bits(0.1), 0x2e66);
  });

  it('overflows to infinity and keeps NaN', () => {
    assert.equal(toFloat16Bits(1e6), 0x7c00);
    assert.equal(toFloat16Bits(-Infinity), 0xfc00);
    assert.ok(Number.isNaN(fromFloat16Bits(toFloat16Bits(NaN))));
  });

  it('rounds to nearest even', () => {
    assert.equal(toFloat16Bits(1 + 2 ** -11), 0x3c00); // halfway, rounds to even (down)
    assert.equal(toFloat16Bits(1 + 3 * 2 ** -11), 0x3c02); // halfway, rounds to even (up)
    assert.equal(toFloat16Bits(65519), 0x7bff);
    assert.equal(toFloat16Bits(65520), 0x7c00); // rounds up into infinity
  });

  it('decodes every finite half exactly and round-trips it', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00) continue; // Inf/NaN
      assert.equal(toFloat16Bits(fromFloat16Bits(bits)), bits, `bits 0x${bits.toString(16)}`);
    }
  });

  it('round-trips arrays within half precision', () => {
    const src = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 10);
    const back = float16ToFloat32(float32ToFloat16(src));
    assert.ok(back.every((v, i) => Math.abs(v - src[i]!) <= Math.abs(src[i]!) * 2 ** -11 + 2 ** -24));
  });
});

describe('float16 array conversion', () => {
  it('encodes exactly as the per-value reference, halfway points, subnormals, overflow and NaN included', () => {
    const values: number[] = [
      0,
      -0,
      65504,
      65519,
      65520,
      65535.9,
      65536,
      1e6,
      Infinity,
      -Infinity,
      NaN,
      2 ** -24,
      2 ** -25,
      3 * 2 ** -26,
      2 ** -14,
      2 ** -14 - 2 ** -25,
    ];
    for (let bits = 0; bits < 0x7c00; bits++) {
      const v = fromFloat16Bits(bits);
      const next = fromFloat16Bits(bits + 1);
      values.push(v, -v, (v + next) / 2, -(v + next) / 2, v + (next - v) * 0.49, v + (next - v) * 0.51);
    }
    const raw = new Uint32Array(20000);
    let seed = 12345;
    for (let i = 0; i < raw.length; i++) raw[i] = seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    values.push(...new Float32Array(raw.buffer));
    const src = Float32Array.from(values);
    const fast = float32ToFloat16(src);
    for (let i = 0; i < src.length; i++) {
      const want = toFloat16Bits(src[i]!);
      if (Number.isNaN(src[i]!)) assert.equal(fast[i]! & 0x7c00, 0x7c00, 'NaN keeps the all-ones exponent');
      else assert.equal(fast[i], want, `value ${src[i]}: 0x${fast[i]!.toString(16)} vs 0x${want.toString(16)}`);
    }
  });

  it('encodes a subarray view from its own offset', () => {
    const whole = Float32Array.from([1, 2, 3, 4]);
    assert.deepEqual([...float32ToFloat16(whole.subarray(2))], [toFloat16Bits(3), toFloat16Bits(4)]);
  });

  it('decodes every half exactly as the per-value reference', () => {
    const all = Uint16Array.from({ length: 0x10000 }, (_, i) => i);
    const out = float16ToFloat32(all);
    for (let b = 0; b < 0x10000; b++) {
      const want = Math.fround(fromFloat16Bits(b));
      if (Number.isNaN(want)) assert.ok(Number.isNaN(out[b]!));
      else assert.ok(Object.is(out[b], want), `bits 0x${b.toString(16)}`);
    }
  });
});

describe('float16 tensors on every Node version', () => {
  // Node 24 has a global Float16Array and ort then stores float16 data in one, even data given as Uint16Array bits.
  it('reads the half bits and their values back whether ort keeps them in Uint16Array or Float16Array', () => {
    const bits = float32ToFloat16(Float32Array.from([1, -2, 0.5, 65504]));
    const tensor = new ort.Tensor('float16', bits, [4]);
    const back = readFloatData(tensor);
    assert.ok(back instanceof Uint16Array, `half bits come back as Uint16Array, not ${back.constructor.name}`);
    assert.deepEqual([...back], [...bits]);
    assert.deepEqual([...readFloat(tensor)], [1, -2, 0.5, 65504]);
  });
});
