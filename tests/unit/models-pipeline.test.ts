// The img2img pipeline and ONNX components run in-process against the SD-layout fixtures (random weights,
// real interfaces): fp32, fp16, and the exporter variants in tests/fixtures/sd-variants.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { RgbImage, StageTiming } from '../../frame/video-frame.js';
import { loadComponents, type DiffusionComponents } from '../../models/diffusion-components.js';
import { ConditioningTable } from '../../models/conditioning.js';
import { float16ToFloat32, float32ToFloat16 } from '../../models/float16.js';
import { FixedNoise, img2img } from '../../models/img2img.js';
import { rgbToTensor, tensorToRgb } from '../../models/pixel-tensors.js';
import { loadManifest, type ModelManifest } from '../../models/manifest.js';
import { OnnxComponent } from '../../models/onnx-component.js';
import { NoiseSchedule } from '../../models/scheduler.js';

const FIXTURES = fileURLToPath(new URL('../../../tests/fixtures/', import.meta.url));
const SESSION = { provider: 'cpu' as const, fallbackToCpu: true, intraOpThreads: 1 };
const loaded: DiffusionComponents[] = [];
const scratch = mkdtempSync(join(tmpdir(), 'sds-pipeline-'));
after(async () => {
  await Promise.all(loaded.map((c) => c.release()));
  rmSync(scratch, { recursive: true, force: true });
});

async function model(manifest: ModelManifest) {
  const components = await loadComponents(manifest, SESSION);
  loaded.push(components);
  return { manifest, schedule: new NoiseSchedule(manifest.scheduler), components, table: new ConditioningTable(manifest) };
}

function testImage(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 7)) & 0xff;
  return { width, height, data };
}

async function run(
  m: Awaited<ReturnType<typeof model>>,
  image: RgbImage,
  opts: { steps?: number; strength?: number; style?: string | { from: string; to: string; t: number }; seed?: number } = {},
) {
  const stages: StageTiming[] = [];
  const { contextTokens, contextDim } = m.components.denoiser;
  const { image: out } = await img2img(
    m,
    image,
    {
      steps: opts.steps ?? 2,
      strength: opts.strength ?? 0.5,
      conditioning: m.table.embedding(opts.style ?? '', contextTokens, contextDim),
      noise: new FixedNoise(opts.seed ?? 1),
    },
    stages,
  );
  return { out, stages };
}

function maxDiff(a: Uint8Array, b: Uint8Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

describe('pixel conversion', () => {
  const manifest = loadManifest(join(FIXTURES, 'sd-tiny'));

  it('maps RGB24 to planar NCHW in the pixel range [-1, 1]', () => {
    const t = rgbToTensor({ width: 2, height: 1, data: Uint8Array.from([0, 255, 51, 255, 0, 204]) }, { ...manifest, sizeMultiple: 1 });
    assert.deepEqual(
      [...t].map((v) => Math.round(v * 100) / 100),
      [-1, 1, 1, -1, -0.6, 0.6],
    );
  });

  it('maps back with clamping and rounding, and round-trips every byte value', () => {
    const out = tensorToRgb(Float32Array.from([-2, 2, 0, NaN, 1, -1]), 2, 1, manifest);
    assert.deepEqual([...out.data], [0, 128, 255, 255, 0, 0]); // planar in, packed out; NaN → 0
    const all = Uint8Array.from({ length: 256 * 3 }, (_, i) => i % 256);
    const img = { width: 256, height: 1, data: all };
    assert.deepEqual(tensorToRgb(rgbToTensor(img, { ...manifest, sizeMultiple: 1 }), 256, 1, manifest).data, all);
  });

  it('writes a float16 encoder input directly, bit for bit what converting the float32 tensor gives', () => {
    const img = { width: 256, height: 1, data: Uint8Array.from({ length: 256 * 3 }, (_, i) => (i * 7) % 256) };
    for (const pixelRange of [
      [-1, 1],
      [0, 1],
    ] as [number, number][]) {
      const m = { ...manifest, sizeMultiple: 1, pixelRange };
      assert.deepEqual(rgbToTensor(img, m, 'float16'), float32ToFloat16(rgbToTensor(img, m)));
    }
  });

  it('maps every float16 decoder output to the byte the float32 path gives (clamp, rounding, NaN, infinities)', () => {
    const halves = Uint16Array.from({ length: 3 * 0x10000 }, (_, i) => (i * 40503) & 0xffff); // each plane: every half
    for (const pixelRange of [
      [-1, 1],
      [0, 1],
    ] as [number, number][]) {
      const m = { ...manifest, pixelRange };
      assert.deepEqual(tensorToRgb(halves, 0x10000, 1, m).data, tensorToRgb(float16ToFloat32(halves), 0x10000, 1, m).data);
    }
  });
});

describe('ONNX component metadata', () => {
  it('reads input/output names, types and shapes from the session', async () => {
    const unet = await OnnxComponent.load(join(FIXTURES, 'sd-tiny/unet/model.onnx'), SESSION);
    try {
      assert.deepEqual(
        unet.inputs.map((s) => [s.name, s.type, s.shape.length]),
        [
          ['sample', 'float32', 4],
          ['timestep', 'float32', 0],
          ['encoder_hidden_states', 'float32', 3],
        ],
      );
      assert.deepEqual(
        unet.outputs.map((s) => s.name),
        ['out_sample'],
      );
    } finally {
      await unet.release();
    }
  });

  it('falls back to CPU with one log line when the requested provider cannot start', async () => {
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    const c = await OnnxComponent.load(join(FIXTURES, 'sd-tiny/vae_decoder/model.onnx'), { ...SESSION, provider: 'cuda', logger });
    await c.release();
    assert.equal(c.provider, 'cpu');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /execution provider "cuda" unavailable .* falling back to CPU/);
  });

  it('throws a clear error instead when CPU fallback is disabled', async () => {
    await assert.rejects(
      OnnxComponent.load(join(FIXTURES, 'sd-tiny/vae_decoder/model.onnx'), { ...SESSION, provider: 'cuda', fallbackToCpu: false }),
      /execution provider "cuda" failed for .*vae_decoder.*\(CPU fallback is disabled\)/,
    );
  });
});

describe('img2img on the SD-Turbo-layout fixture', () => {
  it('turns a native-size RGB frame into an RGB frame and times each stage in order', async () => {
    const m = await model(loadManifest(join(FIXTURES, 'sd-tiny')));
    const { out, stages } = await run(m, testImage(64, 64));
    assert.equal(out.width, 64);
    assert.equal(out.height, 64);
    assert.equal(out.data.length, 64 * 64 * 3);
    // The VAE is wrapped in pixel graphs: no host pre/postprocessing stage.
    assert.ok(m.components.encoder.inGraph && m.components.decoder.inGraph);
    assert.deepEqual(
      stages.map((s) => s.name),
      ['vae_encode', 'denoise', 'vae_decode'],
    );
    for (let i = 0; i < stages.length; i++) {
      assert.ok(stages[i]!.endMs >= stages[i]!.startMs);
      if (i > 0) assert.ok(stages[i]!.startMs >= stages[i - 1]!.endMs);
    }
  });

  it('works at a non-native resolution (dynamic axes)', async () => {
    const m = await model(loadManifest(join(FIXTURES, 'sd-tiny')));
    const { out } = await run(m, testImage(80, 48));
    assert.deepEqual([out.width, out.height, out.data.length], [80, 48, 80 * 48 * 3]);
  });

  it('is deterministic for a seed and changes with the seed, strength and steps', async () => {
    const m = await model(loadManifest(join(FIXTURES, 'sd-tiny')));
    const img = testImage(64, 64);
    const a = (await run(m, img, { seed: 5 })).out.data;
    assert.deepEqual((await run(m, img, { seed: 5 })).out.data, a);
    assert.notDeepEqual((await run(m, img, { seed: 6 })).out.data, a);
    assert.notDeepEqual((await run(m, img, { seed: 5, strength: 0.9 })).out.data, a);
    assert.notDeepEqual((await run(m, img, { seed: 5, steps: 3 })).out.data, a);
  });

  it('rejects an image whose data does not match its size', async () => {
    const m = await model(loadManifest(join(FIXTURES, 'sd-tiny')));
    await assert.rejects(run(m, { width: 64, height: 64, data: new Uint8Array(10) }), /image data has 10 bytes; 64×64 RGB needs 12288/);
  });

  it('runs the float16 export and agrees with float32 to within a few levels', async () => {
    const img = testImage(64, 64);
    const f32 = (await run(await model(loadManifest(join(FIXTURES, 'sd-tiny'))), img)).out.data;
    const f16 = (await run(await model(loadManifest(join(FIXTURES, 'sd-tiny-fp16'))), img)).out.data;
    assert.ok(maxDiff(f32, f16) <= 6, `max difference ${maxDiff(f32, f16)}`);
  });
});

describe('exporter variants', () => {
  const base = loadManifest(join(FIXTURES, 'sd-tiny'));
  const variant = (part: 'denoiser' | 'vae_encoder', file: string): ModelManifest => ({
    ...base,
    components: { ...base.components, [part]: join(FIXTURES, 'sd-variants', file) },
  });

  it('feeds the timestep as rank-0 float, [1] float and int64 [steps] with the same result', async () => {
    const img = testImage(64, 64);
    const ref = (await run(await model(base), img)).out.data;
    for (const file of ['unet-timestep-float-scalar.onnx', 'unet-timestep-float-vector.onnx', 'unet-timestep-int64-vector.onnx']) {
      const out = (await run(await model(variant('denoiser', file)), img)).out.data;
      assert.ok(maxDiff(out, ref) <= 1, `${file}: max difference ${maxDiff(out, ref)}`);
    }
  });

  it('accepts an encoder that outputs latent_sample instead of latent_parameters', async () => {
    const img = testImage(64, 64);
    const ref = (await run(await model(base), img)).out.data;
    const out = (await run(await model(variant('vae_encoder', 'vae-encoder-latent-sample.onnx')), img)).out.data;
    assert.ok(maxDiff(out, ref) <= 1, `max difference ${maxDiff(out, ref)}`);
  });

  it('feeds the LCM timestep_cond and SDXL text_embeds/time_ids inputs', async () => {
    for (const file of ['unet-lcm-timestep-cond.onnx', 'unet-sdxl.onnx']) {
      const { out } = await run(await model(variant('denoiser', file)), testImage(64, 64));
      assert.equal(out.data.length, 64 * 64 * 3, file);
    }
  });
});

describe('style conditioning', () => {
  // A style model over the fixture's weights: its cross-attention takes [1, 1, 32] as well as [1, 77, 32].
  const base = loadManifest(join(FIXTURES, 'sd-tiny'));
  const emb = (k: number): number[] => Array.from({ length: 32 }, (_, i) => Math.sin(i * k) * 3);
  const styleManifest = (): ModelManifest => {
    writeFileSync(
      join(scratch, 'manifest.json'),
      JSON.stringify({
        format: 'sds-model/1',
        name: 'style-fixture',
        components: {
          vae_encoder: base.components.vae_encoder,
          denoiser: base.components.denoiser,
          vae_decoder: base.components.vae_decoder,
        },
        latent: base.latent,
        pixelRange: [-1, 1],
        resolution: { width: 64, height: 64 },
        sizeMultiple: 8,
        scheduler: { ...base.scheduler },
        steps: [1, 2],
        defaults: { steps: 1, strength: 0.5, style: 'ink' },
        conditioning: {
          kind: 'styles',
          dim: 32,
          styles: [
            { id: 'ink', label: 'Ink', embedding: emb(1) },
            { id: 'oil', label: 'Oil', embedding: emb(2) },
          ],
        },
      }),
    );
    return loadManifest(scratch);
  };

  it('changes the output with the style, and a blend at t=0 / t=1 equals its endpoints', async () => {
    const m = await model(styleManifest());
    assert.equal(m.components.denoiser.contextTokens, 1);
    const img = testImage(64, 64);
    const ink = (await run(m, img, { style: 'ink' })).out.data;
    const oil = (await run(m, img, { style: 'oil' })).out.data;
    assert.notDeepEqual(ink, oil);
    assert.deepEqual((await run(m, img, { style: '' })).out.data, ink); // '' = the default style
    assert.deepEqual((await run(m, img, { style: { from: 'ink', to: 'oil', t: 0 } })).out.data, ink);
    assert.deepEqual((await run(m, img, { style: { from: 'ink', to: 'oil', t: 1 } })).out.data, oil);
    const mid = (await run(m, img, { style: { from: 'ink', to: 'oil', t: 0.5 } })).out.data;
    assert.notDeepEqual(mid, ink);
    assert.notDeepEqual(mid, oil);
  });

  it('names the available styles for an unknown one', async () => {
    const m = await model(styleManifest());
    await assert.rejects(run(m, testImage(64, 64), { style: 'pastel' }), /unknown style "pastel" \(available: ink, oil\)/);
  });
});
