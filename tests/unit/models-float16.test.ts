import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { float16ToFloat32, float32ToFloat16, fromFloat16Bits, toFloat16Bits } from '../../models/float16.js';

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
