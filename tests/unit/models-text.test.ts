// Text conditioning for SD-Turbo-class models: the CLIP tokenizer built from a model folder's slow-
// tokenizer files, the text encoder with its per-prompt cache, prompt and seed blends, end to end on
// the tiny SD-layout fixture. (Its vocabulary is a small CLIP-format stand-in, so ids differ from real
// CLIP's; token strings and framing — BOS, EOS, padding, truncation — are what is checked.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClipTokenizer } from '../../models/clip-tokenizer.js';
import { loadManifest } from '../../models/manifest.js';
import { ModelRuntime } from '../../realtime/model-runtime.js';
import { blendPrompts, TextEncoder } from '../../models/text-encoder.js';
import { FixedNoise } from '../../models/img2img.js';
import type { RestyleRequest } from '../../models/restyle-types.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SD_TINY = join(ROOT, 'tests/fixtures/sd-tiny');
const TOKENIZER = join(SD_TINY, 'tokenizer');

test('CLIP tokenization: lower-cased words ending in </w>, BOS … EOS, padded to 77 with the family pad token', () => {
  const tok = ClipTokenizer.load(TOKENIZER);
  // Real CLIP tokenizes this phrase to the same strings (ids 320 1125 539 320 2368 in its vocabulary).
  assert.deepEqual(tok.tokenize('A  photo of\ta CAT'), ['a</w>', 'photo</w>', 'of</w>', 'a</w>', 'cat</w>']);
  assert.deepEqual(tok.tokenize('doing?'), ['do', 'ing</w>', '?</w>']);
  const ids = tok.encode('a photo of a cat');
  assert.equal(ids.length, 77);
  assert.equal(ids[0], tok.bosId);
  assert.equal(ids[6], tok.eosId);
  // SD 2.x / SD-Turbo pad with "!" (id 0); everything after EOS is padding.
  assert.equal(tok.padId, 0);
  assert.ok(ids.slice(7).every((v) => v === 0));
});

test('a long prompt is truncated to 77 ids and keeps its EOS; SD 1.x configs pad with EOS', () => {
  const tok = ClipTokenizer.load(TOKENIZER);
  const ids = tok.encode('cat '.repeat(200));
  assert.equal(ids.length, 77);
  assert.equal(ids[76], tok.eosId);
  assert.equal(ids[75], tok.encode('cat')[1]);
  const dir = mkdtempSync(join(tmpdir(), 'sds-tok-'));
  try {
    cpSync(TOKENIZER, dir, { recursive: true });
    for (const f of ['tokenizer_config.json', 'special_tokens_map.json']) {
      const json = JSON.parse(readFileSync(join(dir, f), 'utf8'));
      json.pad_token = '<|endoftext|>';
      writeFileSync(join(dir, f), JSON.stringify(json));
    }
    const sd1 = ClipTokenizer.load(dir);
    assert.equal(sd1.padId, sd1.eosId);
    assert.ok(
      sd1
        .encode('a cat')
        .slice(3)
        .every((v) => v === sd1.eosId),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the text encoder runs once per prompt (cached) and blends prompts by weight', async () => {
  const encoder = await TextEncoder.load(loadManifest(SD_TINY), { provider: 'cpu', fallbackToCpu: false, intraOpThreads: 1 });
  try {
    const a = await encoder.embed('a red car');
    const again = await encoder.embed('a red car');
    assert.equal(again, a, 'the cached embedding');
    assert.equal(a.context.length, 77 * 32);
    assert.equal(a.pooled, undefined, 'SD 2.x has no pooled text embedding');
    const b = await encoder.embed('a blue sky');
    assert.notDeepEqual(a.context, b.context);
    assert.equal(encoder.cachedPrompts, 2);
    const half = await blendPrompts(encoder, [
      { prompt: 'a red car', weight: 1 },
      { prompt: 'a blue sky', weight: 1 },
    ]);
    for (let i = 0; i < a.context.length; i += 97) assert.ok(Math.abs(half.context[i]! - (a.context[i]! + b.context[i]!) / 2) < 1e-6);
    const onlyA = await blendPrompts(encoder, [
      { prompt: 'a red car', weight: 2 },
      { prompt: 'a blue sky', weight: 0 },
    ]);
    assert.deepEqual(onlyA, a);
    await assert.rejects(blendPrompts(encoder, [{ prompt: 'x', weight: 0 }]), RangeError);
  } finally {
    await encoder.release();
  }
});

test('a seed blend is unit-variance noise between its seeds; one seed of weight w is that seed', () => {
  const n = 20_000;
  const a = new FixedNoise(1).get(n);
  assert.deepEqual(new FixedNoise(0, [{ seed: 1, weight: 0.7 }]).get(n), a);
  const mix = new FixedNoise(0, [
    { seed: 1, weight: 1 },
    { seed: 2, weight: 1 },
  ]).get(n);
  const variance = mix.reduce((s, v) => s + v * v, 0) / n;
  assert.ok(Math.abs(variance - 1) < 0.05, `variance ${variance.toFixed(3)}`);
  let corr = 0;
  for (let i = 0; i < n; i++) corr += mix[i]! * a[i]!;
  assert.ok(Math.abs(corr / n - Math.SQRT1_2) < 0.05, 'correlates 1/√2 with each seed');
});

test('the SD-layout model restyles by prompt: prompts change the output, blends and seeds are honoured', async () => {
  const rt = await ModelRuntime.load({ modelDir: SD_TINY, intraOpThreads: 1 });
  const frame = () => {
    const data = new Uint8Array(64 * 64 * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    return { width: 64, height: 64, data };
  };
  let n = 0;
  const run = async (extra: Partial<RestyleRequest>) =>
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
  try {
    const car = await run({ prompt: 'a red car' });
    assert.deepEqual(await run({ prompt: 'a red car' }), car, 'same prompt, same seed: same output');
    const sky = await run({ prompt: 'a blue sky' });
    assert.notDeepEqual(sky, car, 'the prompt reaches the denoiser');
    assert.deepEqual(
      await run({ prompt: 'ignored', promptBlend: [{ prompt: 'a red car', weight: 1 }] }),
      car,
      'a blend overrides the prompt',
    );
    const mixed = await run({
      promptBlend: [
        { prompt: 'a red car', weight: 1 },
        { prompt: 'a blue sky', weight: 1 },
      ],
    });
    assert.notDeepEqual(mixed, car);
    assert.notDeepEqual(mixed, sky);
    assert.deepEqual(
      await run({ prompt: 'a red car', seed: 99, seedBlend: [{ seed: 3, weight: 1 }] }),
      car,
      'a seed blend overrides the seed',
    );
    assert.notDeepEqual(await run({ prompt: 'a red car', seed: 4 }), car, 'the seed reaches the noise');
  } finally {
    await rt.close();
  }
});
