import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  addNoise,
  alphasCumprod,
  betas,
  diffusersImg2ImgTimesteps,
  gaussianNoise,
  guidanceScaleEmbedding,
  inferenceTimesteps,
  NoiseSchedule,
  predictX0,
  streamTimesteps,
  type SchedulerConfig,
} from '../../models/scheduler.js';

const SD: SchedulerConfig = {
  betaSchedule: 'scaled_linear',
  betaStart: 0.00085,
  betaEnd: 0.012,
  numTrainTimesteps: 1000,
  predictionType: 'epsilon',
  timestepSpacing: 'trailing',
};

const close = (a: number, b: number, tol: number, what = ''): void =>
  assert.ok(Math.abs(a - b) <= tol, `${what} ${a} is not within ${tol} of ${b}`);

describe('noise schedule (SD scaled_linear)', () => {
  it('starts and ends β at betaStart and betaEnd', () => {
    const b = betas(SD);
    close(b[0]!, 0.00085, 1e-12);
    close(b[999]!, 0.012, 1e-12);
  });

  it('squares a linspace of square roots (scaled_linear)', () => {
    const mid = (Math.sqrt(0.00085) + (Math.sqrt(0.012) - Math.sqrt(0.00085)) * (500 / 999)) ** 2;
    close(betas(SD)[500]!, mid, 1e-15);
  });

  it('is linear for betaSchedule "linear"', () => {
    close(betas({ ...SD, betaSchedule: 'linear', betaStart: 0.0001, betaEnd: 0.02 })[999]!, 0.02, 1e-12);
  });

  it('has ᾱ_0 = 1 - β_0 and decreasing ᾱ', () => {
    const ac = alphasCumprod(SD);
    close(ac[0]!, 0.99915, 1e-12);
    for (let t = 1; t < 1000; t++) assert.ok(ac[t]! < ac[t - 1]!);
  });

  it("gives SD's σ_max = 14.6146 at t=999 and σ_min = 0.0292 at t=0", () => {
    const s = new NoiseSchedule(SD);
    close(s.sigma(999), 14.6146, 1e-4, 'σ(999)');
    close(s.sigma(0), 0.029168, 1e-5, 'σ(0)');
    close(s.alphaBar(999), 1 / (1 + 14.6146 ** 2), 1e-7, 'ᾱ(999) = 1/(1+σ²)');
  });
});

describe('add_noise and x0 predictions', () => {
  const x0 = Float32Array.from([1, -0.5, 0.25]);
  const eps = Float32Array.from([0.3, 2, -1]);
  const ab = 0.64; // √ᾱ = 0.8, √(1-ᾱ) = 0.6

  it('adds noise as √ᾱ·x0 + √(1-ᾱ)·ε', () => {
    const xt = addNoise(x0, eps, ab);
    [0.8 + 0.18, -0.4 + 1.2, 0.2 - 0.6].forEach((v, i) => close(xt[i]!, v, 1e-6));
  });

  it('recovers x0 from an ε prediction', () => {
    const xt = addNoise(x0, eps, ab);
    predictX0(eps, xt, ab, 'epsilon').forEach((v, i) => close(v, x0[i]!, 1e-6));
  });

  it('recovers x0 from a v prediction (v = √ᾱ·ε - √(1-ᾱ)·x0)', () => {
    const xt = addNoise(x0, eps, ab);
    const v = x0.map((x, i) => 0.8 * eps[i]! - 0.6 * x);
    predictX0(v, xt, ab, 'v_prediction').forEach((val, i) => close(val, x0[i]!, 1e-6));
  });

  it('passes a sample prediction through', () => {
    assert.deepEqual([...predictX0(x0, eps, ab, 'sample')], [...x0]);
  });
});

describe('timesteps', () => {
  it('trailing spacing: round(arange(T, 0, -T/N)) - 1', () => {
    assert.deepEqual(inferenceTimesteps(4, 1000, 'trailing'), [999, 749, 499, 249]);
    assert.deepEqual(inferenceTimesteps(3, 1000, 'trailing'), [999, 666, 332]);
    assert.deepEqual(inferenceTimesteps(1, 1000, 'trailing'), [999]);
  });

  it('leading and linspace spacing match diffusers', () => {
    assert.deepEqual(inferenceTimesteps(4, 1000, 'leading'), [750, 500, 250, 0]);
    assert.deepEqual(inferenceTimesteps(4, 1000, 'linspace'), [999, 666, 333, 0]);
  });

  it('diffusers img2img keeps the last int(N·strength) timesteps', () => {
    assert.deepEqual(diffusersImg2ImgTimesteps(4, 0.5, SD), [499, 249]);
    assert.deepEqual(diffusersImg2ImgTimesteps(2, 0.5, SD), [499]); // SD-Turbo's documented img2img setting
    assert.deepEqual(diffusersImg2ImgTimesteps(4, 1, SD), [999, 749, 499, 249]);
    assert.deepEqual(diffusersImg2ImgTimesteps(4, 0.2, SD), []); // int(0.8) = 0 steps
  });

  it('stream mapping runs exactly `steps` steps, trailing over [0, strength·T)', () => {
    assert.deepEqual(streamTimesteps(1, 0.5, 1000), [499]);
    assert.deepEqual(streamTimesteps(2, 0.5, 1000), [499, 249]);
    assert.deepEqual(streamTimesteps(4, 1, 1000), [999, 749, 499, 249]);
    assert.deepEqual(streamTimesteps(3, 0.6, 1000), [599, 399, 199]);
    assert.deepEqual(streamTimesteps(1, 0, 1000), [0]); // clamped, never negative
  });
});

describe('fixed noise', () => {
  it('is identical for the same seed', () => {
    assert.deepEqual(gaussianNoise(42, 1000), gaussianNoise(42, 1000));
  });

  it('differs for different seeds', () => {
    assert.notDeepEqual(gaussianNoise(1, 16), gaussianNoise(2, 16));
  });

  it('is standard normal (mean ≈ 0, variance ≈ 1)', () => {
    const n = gaussianNoise(7, 100_000);
    const mean = n.reduce((a, b) => a + b, 0) / n.length;
    const variance = n.reduce((a, b) => a + (b - mean) ** 2, 0) / n.length;
    close(mean, 0, 0.02, 'mean');
    close(variance, 1, 0.02, 'variance');
    assert.ok(n.every(Number.isFinite));
  });
});

it('LCM guidance-scale embedding matches diffusers (w = 8.5, dim 8; values from the reference formula in torch)', () => {
  // /usr/bin/python3: w=(8.5-1)*1000; f=exp(arange(4)*-(log(10000)/3)); cat(sin(w*f), cos(w*f))
  const expected = [-0.851236, 0.562671, -0.435233, 0.681639, -0.524783, -0.826681, -0.900318, 0.731689];
  const got = guidanceScaleEmbedding(8.5, 8);
  expected.forEach((v, i) => assert.ok(Math.abs(got[i]! - v) < 1e-3, `[${i}] ${got[i]} vs ${v}`));
  // An odd dim is zero-padded at the end; w = 1 (no guidance) is sin 0 / cos 0.
  assert.equal(guidanceScaleEmbedding(8.5, 9)[8], 0);
  assert.deepEqual([...guidanceScaleEmbedding(1, 4)], [0, 0, 1, 1]);
});
