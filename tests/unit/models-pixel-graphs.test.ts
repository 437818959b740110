// The VAE wrapped in pixel graphs gives what the host conversions give, for the project's model and the SD/SDXL
// fixtures in float32 and float16; a file that cannot be wrapped is refused with its reason.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { RgbImage, StageTiming } from '../../frame/video-frame.js';
import { loadComponents, type DiffusionComponents } from '../../models/diffusion-components.js';
import { loadManifest } from '../../models/manifest.js';
import { ProtoWriter, initializer } from '../../models/onnx-protobuf.js';
import { imageDecoderGraph, imageEncoderGraph, PixelGraphError } from '../../models/pixel-graphs.js';
import { ConditioningTable } from '../../models/conditioning.js';
import { FixedNoise, img2img } from '../../models/img2img.js';
import { NoiseSchedule } from '../../models/scheduler.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SESSION = { provider: 'cpu' as const, fallbackToCpu: false, intraOpThreads: 1 };
const loaded: DiffusionComponents[] = [];
after(async () => {
  await Promise.all(loaded.map((c) => c.release()));
});

function photoLike(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0, i = 0; y < height; y++)
    for (let x = 0; x < width; x++, i += 3) {
      data[i] = (x * 4 + y) & 0xff;
      data[i + 1] = (128 + 100 * Math.sin(x / 5 + y / 7)) | 0;
      data[i + 2] = (y * 3) & 0xff;
    }
  return { width, height, data };
}

/** The largest difference between `got` and `want`, and the largest magnitude in `want` (to scale a tolerance by). */
function maxDiff(got: ArrayLike<number>, want: ArrayLike<number>): { diff: number; scale: number } {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < got.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!));
    diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
  }
  return { diff, scale };
}

const MODELS = [
  ['the default model', 'models/default', 320, 256],
  ['sd-tiny (float32)', 'tests/fixtures/sd-tiny', 64, 64],
  ['sd-tiny-fp16 (float16)', 'tests/fixtures/sd-tiny-fp16', 64, 64],
  ['sdxl-tiny', 'tests/fixtures/sdxl-tiny', 64, 48],
] as const;

describe('pixel graphs match the host path', () => {
  for (const [label, dir, width, height] of MODELS) {
    it(`${label}: uint8 in → the same scaled latent; the same latent → the same bytes out`, async () => {
      const manifest = loadManifest(join(ROOT, dir));
      const graph = await loadComponents(manifest, SESSION);
      const host = await loadComponents(manifest, { ...SESSION, pixelGraphs: false });
      loaded.push(graph, host);
      assert.deepEqual(
        [graph.encoder.inGraph, graph.decoder.inGraph, host.encoder.inGraph, host.decoder.inGraph],
        [true, true, false, false],
      );

      const image = photoLike(width, height);
      const stages: StageTiming[] = [];
      const a = await graph.encoder.encode(image, stages);
      const b = await host.encoder.encode(image, []);
      assert.deepEqual(a.dims, b.dims);
      assert.deepEqual(
        stages.map((s) => s.name),
        ['vae_encode'],
        'no host preprocessing stage',
      );
      const { diff, scale } = maxDiff(a.data, b.data);
      // float16 models differ by a rounding of the input here and there; float32 ones only in the last bits.
      const tolerance = dir.endsWith('fp16') ? 2e-2 : 1e-4;
      assert.ok(diff <= tolerance * Math.max(1, scale), `latent max diff ${diff} (scale ${scale})`);

      const outA = await graph.decoder.decode(b, []);
      const outB = await host.decoder.decode(b, []);
      assert.deepEqual([outA.width, outA.height], [outB.width, outB.height]);
      let worst = 0;
      let off = 0;
      for (let i = 0; i < outA.data.length; i++) {
        const d = Math.abs(outA.data[i]! - outB.data[i]!);
        worst = Math.max(worst, d);
        if (d > 0) off++;
      }
      assert.ok(worst <= 1, `bytes differ by up to ${worst}`);
      assert.ok(off <= outA.data.length * 0.01, `${off} of ${outA.data.length} bytes differ (rounding at .5 in float32 vs float64)`);
    });
  }
});

describe('the denoiser step graph matches the host scheduler arithmetic', () => {
  const cases = [
    ['the default model (x0-predicting)', 'models/default', 64, 64, undefined],
    ['sd-tiny (ε)', 'tests/fixtures/sd-tiny', 64, 64, undefined],
    ['sd-tiny read as v-prediction', 'tests/fixtures/sd-tiny', 64, 64, 'v_prediction'],
    ['sd-tiny-fp16 (ε, float16)', 'tests/fixtures/sd-tiny-fp16', 64, 64, undefined],
    ['sdxl-tiny (text_embeds, time_ids)', 'tests/fixtures/sdxl-tiny', 64, 48, undefined],
  ] as const;
  for (const [label, dir, width, height, predictionType] of cases) {
    it(`${label}: two steps give the same output latent`, async () => {
      const base = loadManifest(join(ROOT, dir));
      const manifest = predictionType ? { ...base, scheduler: { ...base.scheduler, predictionType } } : base;
      const graph = await loadComponents(manifest, SESSION);
      const host = await loadComponents(manifest, { ...SESSION, pixelGraphs: false });
      loaded.push(graph, host);
      assert.ok(graph.denoiser.inGraph && !host.denoiser.inGraph);
      const schedule = new NoiseSchedule(manifest.scheduler);
      const table = new ConditioningTable(manifest);
      const run = (components: DiffusionComponents) =>
        img2img(
          { manifest, schedule, components },
          photoLike(width, height),
          {
            steps: 2,
            strength: 0.6,
            conditioning: table.embedding(manifest.defaults.style, components.denoiser.contextTokens, components.denoiser.contextDim),
            noise: new FixedNoise(3),
          },
          [],
        );
      const [a, b] = [await run(graph), await run(host)];
      const { diff, scale } = maxDiff(a.outputLatent, b.outputLatent);
      const tolerance = dir.endsWith('fp16') ? 3e-2 : 1e-3;
      assert.ok(diff <= tolerance * Math.max(1, scale), `output latent max diff ${diff} (scale ${scale})`);
    });
  }
});

/** A model file with only what the wrapper reads: an opset import and a graph with one initializer. */
function tinyModel(opset: number, external: boolean): Uint8Array {
  const tensor = initializer('w', 'float', [1], [1]);
  if (external) tensor.varint(14, 1);
  const graph = new ProtoWriter().bytes(5, tensor);
  return new ProtoWriter().varint(1, 8).bytes(8, new ProtoWriter().string(1, '').varint(2, opset)).bytes(7, graph).finish();
}

describe('a model that cannot be wrapped is refused with its reason', () => {
  const options = { pixelRange: [-1, 1] as const, scalingFactor: 0.18, channels: 4 };
  it('weights in external data files', () => {
    assert.throws(
      () => imageEncoderGraph(tinyModel(17, true), options),
      (e: Error) => e instanceof PixelGraphError && /external data/.test(e.message),
    );
  });
  it('an opset before 11', () => {
    assert.throws(() => imageDecoderGraph(tinyModel(9, false), options), /opset is 9; wrapping needs 11/);
  });
  it('no input to wrap', () => {
    assert.throws(() => imageEncoderGraph(tinyModel(17, false), options), /declares no input/);
  });
});
