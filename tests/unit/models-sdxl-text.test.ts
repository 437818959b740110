// SDXL text conditioning on the tiny SDXL-Turbo-layout fixture (tests/fixtures/sdxl-tiny: text encoders
// 32 and 48 wide with two layers each, text_encoder_2 projecting to 40, a UNet with text_embeds and
// time_ids): the UNet gets both encoders' penultimate hidden states side by side as diffusers builds
// prompt_embeds, and text_encoder_2's text_embeds as its pooled input; blends carry the pooled
// embedding; a folder without text_encoder_2 warns once and conditions on zeros in its place.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { ClipTokenizer } from '../../models/clip-tokenizer.js';
import { loadComponents, type DiffusionComponents } from '../../models/diffusion-components.js';
import type { ConditioningEmbeds } from '../../models/conditioning.js';
import { FixedNoise, img2img } from '../../models/img2img.js';
import { loadManifest, type ModelManifest } from '../../models/manifest.js';
import { ModelRuntime } from '../../realtime/model-runtime.js';
import type { LineLog } from '../../frame/log.js';
import type { RestyleRequest } from '../../models/restyle-types.js';
import { NoiseSchedule } from '../../models/scheduler.js';
import { blendPrompts, TextEncoder } from '../../models/text-encoder.js';

const FIXTURES = fileURLToPath(new URL('../../../tests/fixtures/', import.meta.url));
const SDXL_TINY = join(FIXTURES, 'sdxl-tiny');
const [H1, H2, POOLED, TOKENS] = [32, 48, 40, 77];
const SESSION = { provider: 'cpu' as const, fallbackToCpu: false, intraOpThreads: 1 };

const scratch = mkdtempSync(join(tmpdir(), 'sds-sdxl-'));
const open: Array<{ release(): Promise<void> }> = [];
after(async () => {
  await Promise.all(open.map((o) => o.release()));
  rmSync(scratch, { recursive: true, force: true });
});

function recordingLogger(): LineLog & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info: () => undefined, warn: (m) => warnings.push(m) };
}

/** The fixture's text encoder run directly with onnxruntime: every output, by name (the test's oracle). */
async function encoderOutputs(onnxPath: string, tokenizerDir: string, prompt: string): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(onnxPath);
  try {
    const ids = ClipTokenizer.load(tokenizerDir).encode(prompt);
    const out = await session.run({ input_ids: new ort.Tensor('int32', ids, [1, ids.length]) });
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float32Array]));
  } finally {
    await session.release();
  }
}

/** Row by row, a's then b's features: [tokens × (da + db)]. */
function sideBySide(a: Float32Array, da: number, b: Float32Array, db: number): Float32Array {
  const out = new Float32Array(TOKENS * (da + db));
  for (let t = 0; t < TOKENS; t++) {
    out.set(a.subarray(t * da, (t + 1) * da), t * (da + db));
    out.set(b.subarray(t * db, (t + 1) * db), t * (da + db) + da);
  }
  return out;
}

interface Feeds {
  context: { dims: readonly number[]; data: Float32Array };
  textEmbeds: { dims: readonly number[]; data: Float32Array };
}

/** The SDXL pipeline in-process, recording what each UNet run was fed. */
async function sdxlPipeline(manifest: ModelManifest, logger = recordingLogger()) {
  const components: DiffusionComponents = await loadComponents(manifest, SESSION);
  open.push(components);
  const encoder = await TextEncoder.load(manifest, { ...SESSION, logger }, components.denoiser);
  open.push(encoder);
  const fed: Feeds[] = [];
  const unet = components.denoiser.component;
  const run = unet.run.bind(unet);
  unet.run = (feeds, outputs) => {
    const { encoder_hidden_states: ctx, text_embeds: pooled } = feeds;
    fed.push({
      context: { dims: ctx!.dims, data: (ctx!.data as Float32Array).slice() },
      textEmbeds: { dims: pooled!.dims, data: (pooled!.data as Float32Array).slice() },
    });
    return run(feeds, outputs);
  };
  const model = { manifest, schedule: new NoiseSchedule(manifest.scheduler), components };
  const restyle = async (conditioning: ConditioningEmbeds) => {
    const image = { width: 64, height: 64, data: Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 37) & 0xff) };
    fed.length = 0;
    const { image: out } = await img2img(model, image, { steps: 1, strength: 0.6, conditioning, noise: new FixedNoise(1) }, []);
    return { pixels: out.data, fed: fed[0]! };
  };
  return { encoder, restyle, logger, denoiser: components.denoiser };
}

describe('SDXL text conditioning', () => {
  const manifest = loadManifest(SDXL_TINY);

  it('reads each tokenizer folder’s own pad token: <|endoftext|> for tokenizer/, "!" for tokenizer_2/', () => {
    const one = ClipTokenizer.load(manifest.components.tokenizer!);
    const two = ClipTokenizer.load(manifest.components.tokenizer_2!);
    assert.equal(one.padId, one.eosId);
    assert.equal(two.padId, 0);
    assert.deepEqual([...one.encode('a cat').slice(0, 4)], [...two.encode('a cat').slice(0, 4)], 'same vocabulary and framing');
    assert.equal(one.encode('a cat')[5], one.eosId);
    assert.equal(two.encode('a cat')[5], 0);
  });

  it('feeds the UNet both encoders’ penultimate hidden states side by side and text_encoder_2’s text_embeds', async () => {
    const { encoder, restyle, logger, denoiser } = await sdxlPipeline(manifest);
    assert.deepEqual(logger.warnings, []);
    assert.equal(denoiser.pooledDim, POOLED);
    const prompt = 'a photo of a cat';
    const { fed } = await restyle(await blendPrompts(encoder, [{ prompt, weight: 1 }]));

    const te1 = await encoderOutputs(manifest.components.text_encoder!, manifest.components.tokenizer!, prompt);
    const te2 = await encoderOutputs(manifest.components.text_encoder_2!, manifest.components.tokenizer_2!, prompt);
    assert.deepEqual(fed.context.dims, [1, TOKENS, H1 + H2]);
    // Two layers each: hidden_states.0 is the embeddings, so diffusers' hidden_states[-2] is hidden_states.1.
    assert.deepEqual(fed.context.data, sideBySide(te1['hidden_states.1']!, H1, te2['hidden_states.1']!, H2));
    assert.notDeepEqual(fed.context.data, sideBySide(te1.last_hidden_state!, H1, te2.last_hidden_state!, H2), 'not the last layer');
    assert.deepEqual(fed.textEmbeds.dims, [1, POOLED]);
    assert.deepEqual(fed.textEmbeds.data, te2.text_embeds);
    assert.ok(fed.textEmbeds.data.some((v) => v !== 0));
  });

  it('changes the context, the pooled text_embeds and the picture with the prompt', async () => {
    const { encoder, restyle } = await sdxlPipeline(manifest);
    const car = await restyle(await encoder.embed('a red car'));
    const sky = await restyle(await encoder.embed('a blue sky'));
    assert.notDeepEqual(car.fed.context.data, sky.fed.context.data);
    assert.notDeepEqual(car.fed.textEmbeds.data, sky.fed.textEmbeds.data);
    assert.notDeepEqual(car.pixels, sky.pixels);
    assert.deepEqual((await restyle(await encoder.embed('a red car'))).pixels, car.pixels, 'same prompt, same picture');
  });

  it('blends the pooled embedding with the same weights as the context (a prompt change fades both)', async () => {
    const { encoder } = await sdxlPipeline(manifest);
    const a = await encoder.embed('a red car');
    const b = await encoder.embed('a blue sky');
    assert.equal(a.pooled?.length, POOLED);
    // The engine's transition sends [from: 1 − t, to: t]; t = 0 and t = 1 are exactly the endpoints.
    const at = (t: number) =>
      blendPrompts(encoder, [
        { prompt: 'a red car', weight: 1 - t },
        { prompt: 'a blue sky', weight: t },
      ]);
    assert.deepEqual(await at(0), a);
    assert.deepEqual(await at(1), b);
    const quarter = await at(0.25);
    for (const key of ['context', 'pooled'] as const) {
      const [x, y, m] = [a[key]!, b[key]!, quarter[key]!];
      assert.equal(m.length, x.length);
      for (let i = 0; i < x.length; i++) assert.ok(Math.abs(m[i]! - (0.75 * x[i]! + 0.25 * y[i]!)) < 1e-6, `${key}[${i}]`);
    }
  });

  it('without text_encoder_2 warns once and feeds zeros for text_embeds and for its share of the context', async () => {
    const { text_encoder_2: _e, tokenizer_2: _t, ...rest } = manifest.components;
    const { encoder, restyle, logger } = await sdxlPipeline({ ...manifest, components: rest });
    assert.equal(logger.warnings.length, 1);
    assert.match(logger.warnings[0]!, /no text_encoder_2\/ with tokenizer_2\/; text_embeds and text_encoder_2's share .* are zeros/);
    const prompt = 'a red car';
    const embeds = await encoder.embed(prompt);
    assert.equal(embeds.pooled, undefined);
    const { fed } = await restyle(embeds);
    assert.deepEqual(fed.textEmbeds.dims, [1, POOLED]);
    assert.ok(fed.textEmbeds.data.every((v) => v === 0));
    const te1 = await encoderOutputs(manifest.components.text_encoder!, manifest.components.tokenizer!, prompt);
    assert.deepEqual(fed.context.dims, [1, TOKENS, H1 + H2]);
    assert.deepEqual(fed.context.data, sideBySide(te1['hidden_states.1']!, H1, new Float32Array(TOKENS * H2), H2));
  });

  it('falls back to last_hidden_state, with one warning, for a text encoder exported without hidden states', async () => {
    // sd-tiny's text encoder has the same vocabulary and width as sdxl-tiny's first, but only last_hidden_state.
    const plain = { text_encoder: join(FIXTURES, 'sd-tiny/text_encoder/model.onnx'), tokenizer: join(FIXTURES, 'sd-tiny/tokenizer') };
    const { encoder, restyle, logger } = await sdxlPipeline({ ...manifest, components: { ...manifest.components, ...plain } });
    assert.equal(logger.warnings.length, 1);
    assert.match(logger.warnings[0]!, /sd-tiny.text_encoder.model\.onnx: no hidden_states\.\* outputs.*last_hidden_state/);
    const prompt = 'a red car';
    const { fed } = await restyle(await encoder.embed(prompt));
    const te1 = await encoderOutputs(plain.text_encoder, plain.tokenizer, prompt);
    const te2 = await encoderOutputs(manifest.components.text_encoder_2!, manifest.components.tokenizer_2!, prompt);
    assert.deepEqual(fed.context.data, sideBySide(te1.last_hidden_state!, H1, te2['hidden_states.1']!, H2));
  });
});

describe('SDXL through the worker runtime', () => {
  const frame = (): RestyleRequest['image'] => ({
    width: 64,
    height: 64,
    data: Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 13) & 0xff),
  });
  let n = 0;
  const restyle = async (rt: ModelRuntime, extra: Partial<RestyleRequest>) =>
    (
      await rt.restyle({
        streamId: `s${n++}`,
        image: frame(),
        style: '',
        prompt: '',
        strength: 0.6,
        steps: 2,
        seed: 3,
        consistency: 0,
        ...extra,
      })
    ).image.data;

  it('restyles by prompt, and a prompt blend at weight 0 is the other prompt exactly', async () => {
    const logger = recordingLogger();
    const rt = await ModelRuntime.load({ modelDir: SDXL_TINY, intraOpThreads: 1, logger });
    try {
      assert.deepEqual(logger.warnings, []);
      const car = await restyle(rt, { prompt: 'a red car' });
      const sky = await restyle(rt, { prompt: 'a blue sky' });
      assert.notDeepEqual(car, sky);
      assert.deepEqual(
        await restyle(rt, {
          promptBlend: [
            { prompt: 'a red car', weight: 1 },
            { prompt: 'a blue sky', weight: 0 },
          ],
        }),
        car,
      );
      assert.deepEqual(
        await restyle(rt, {
          promptBlend: [
            { prompt: 'a red car', weight: 0 },
            { prompt: 'a blue sky', weight: 1 },
          ],
        }),
        sky,
      );
    } finally {
      await rt.close();
    }
  });

  it('logs the missing text_encoder_2 once and still restyles by prompt', async () => {
    const dir = join(scratch, 'no-text-encoder-2');
    cpSync(SDXL_TINY, dir, { recursive: true, filter: (src) => !/text_encoder_2|tokenizer_2/.test(src) });
    const logger = recordingLogger();
    const rt = await ModelRuntime.load({ modelDir: dir, intraOpThreads: 1, logger });
    try {
      assert.equal(logger.warnings.filter((w) => /text_encoder_2/.test(w)).length, 1, logger.warnings.join('\n'));
      assert.notDeepEqual(
        await restyle(rt, { prompt: 'a red car' }),
        await restyle(rt, { prompt: 'a blue sky' }),
        'text_encoder still conditions it',
      );
    } finally {
      await rt.close();
    }
  });
});
