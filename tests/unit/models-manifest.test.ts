import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadManifest, ModelLoadError } from '../../models/manifest.js';

const FIXTURES = fileURLToPath(new URL('../../../tests/fixtures/', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'sds-manifest-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

let n = 0;
function folder(files: Record<string, string | object>): string {
  const dir = join(scratch, `m${n++}`);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

function validManifest(): Record<string, unknown> {
  return {
    format: 'sds-model/1',
    name: 'tiny-style',
    description: 'test',
    components: { vae_encoder: 'enc.onnx', denoiser: 'den.onnx', vae_decoder: 'dec.onnx' },
    latent: { channels: 4, downscale: 8, scalingFactor: 0.18215 },
    pixelRange: [-1, 1],
    resolution: { width: 320, height: 256 },
    resolutions: [
      [320, 256],
      [512, 512],
    ],
    sizeMultiple: 8,
    scheduler: {
      betaSchedule: 'scaled_linear',
      betaStart: 0.00085,
      betaEnd: 0.012,
      numTrainTimesteps: 1000,
      predictionType: 'sample',
      timestepSpacing: 'trailing',
    },
    steps: [1, 2, 3, 4],
    defaults: { steps: 1, strength: 0.5, style: 'ink' },
    conditioning: {
      kind: 'styles',
      dim: 3,
      styles: [
        { id: 'ink', label: 'Ink', embedding: [1, 0, 0] },
        { id: 'oil', label: 'Oil', embedding: [0, 1, 0] },
      ],
    },
  };
}
const onnxFiles = { 'enc.onnx': 'x', 'den.onnx': 'x', 'dec.onnx': 'x' };

function rejects(dir: string, pattern: RegExp): void {
  assert.throws(
    () => loadManifest(dir),
    (err: unknown) => {
      assert.ok(err instanceof ModelLoadError, `expected ModelLoadError, got ${String(err)}`);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('sds-model/1 manifest', () => {
  it('parses a valid manifest into absolute paths and typed embeddings', () => {
    const dir = folder({ 'manifest.json': validManifest(), ...onnxFiles });
    const m = loadManifest(dir);
    assert.equal(m.layout, 'sds-model/1');
    assert.equal(m.components.denoiser, join(dir, 'den.onnx'));
    assert.deepEqual(m.resolution, { width: 320, height: 256 });
    assert.equal(m.scheduler.predictionType, 'sample');
    assert.equal(m.conditioning.kind, 'styles');
    if (m.conditioning.kind === 'styles') assert.deepEqual([...m.conditioning.styles[1]!.embedding], [0, 1, 0]);
  });

  it('names the wrong format', () => {
    rejects(folder({ 'manifest.json': { ...validManifest(), format: 'other/2' }, ...onnxFiles }), /format must be "sds-model\/1"/);
  });

  it('names a component file that does not exist', () => {
    rejects(
      folder({ 'manifest.json': validManifest(), 'enc.onnx': 'x', 'dec.onnx': 'x' }),
      /components\.denoiser names den\.onnx, which does not exist/,
    );
  });

  it('names a missing field', () => {
    const bad = validManifest();
    delete (bad.latent as Record<string, unknown>).scalingFactor;
    rejects(folder({ 'manifest.json': bad, ...onnxFiles }), /latent\.scalingFactor must be a positive number/);
  });

  it('rejects an unknown prediction type with the accepted values', () => {
    const bad = validManifest();
    (bad.scheduler as Record<string, unknown>).predictionType = 'flow';
    rejects(folder({ 'manifest.json': bad, ...onnxFiles }), /scheduler\.predictionType must be one of "epsilon", "v_prediction", "sample"/);
  });

  it('rejects an embedding of the wrong length', () => {
    const bad = validManifest();
    (bad.conditioning as { styles: { embedding: number[] }[] }).styles[1]!.embedding = [1, 2];
    rejects(folder({ 'manifest.json': bad, ...onnxFiles }), /conditioning\.styles\[1\]\.embedding must be 3 finite numbers/);
  });

  it('rejects a default style that is not one of the styles', () => {
    const bad = validManifest();
    (bad.defaults as Record<string, unknown>).style = 'pastel';
    rejects(folder({ 'manifest.json': bad, ...onnxFiles }), /defaults\.style must be one of the styles \(ink, oil\)/);
  });

  it('reports invalid JSON with the file name', () => {
    rejects(folder({ 'manifest.json': '{ nope' }), /manifest\.json is not valid JSON/);
  });
});

describe('diffusers ONNX export folder', () => {
  it('reads sd-tiny as a text model with the export’s scheduler and VAE settings', () => {
    const m = loadManifest(join(FIXTURES, 'sd-tiny'));
    assert.equal(m.layout, 'diffusers-onnx');
    assert.equal(m.conditioning.kind, 'text');
    assert.ok(m.components.denoiser.endsWith(join('unet', 'model.onnx')));
    assert.ok(m.components.text_encoder?.endsWith(join('text_encoder', 'model.onnx')));
    assert.deepEqual(m.latent, { channels: 4, downscale: 8, scalingFactor: 0.18215 });
    assert.deepEqual(m.resolution, { width: 64, height: 64 }); // unet sample_size 8 × 8
    assert.equal(m.scheduler.timestepSpacing, 'trailing');
    assert.equal(m.scheduler.predictionType, 'epsilon');
    assert.deepEqual(m.steps, [1, 2, 3, 4]);
    assert.equal(m.defaults.strength, 0.5);
    assert.equal(m.textHiddenSize, 32);
    assert.equal(m.components.text_encoder_2, undefined);
  });

  it('reads sdxl-tiny’s second text encoder and tokenizer, and its VAE’s scaling factor', () => {
    const m = loadManifest(join(FIXTURES, 'sdxl-tiny'));
    assert.ok(m.components.text_encoder_2?.endsWith(join('text_encoder_2', 'model.onnx')));
    assert.ok(m.components.tokenizer_2?.endsWith('tokenizer_2'));
    assert.ok(m.components.tokenizer?.endsWith('tokenizer'));
    assert.equal(m.latent.scalingFactor, 0.13025);
    assert.equal(m.textHiddenSize, 32 + 48); // cross_attention_dim: both encoders side by side
  });

  it('defaults to 512×512 when the unet config has no sample_size', () => {
    const dir = folder({
      'model_index.json': {},
      'unet/model.onnx': 'x',
      'vae_encoder/model.onnx': 'x',
      'vae_decoder/model.onnx': 'x',
      'scheduler/scheduler_config.json': {},
    });
    assert.deepEqual(loadManifest(dir).resolution, { width: 512, height: 512 });
  });

  it('lists exactly the missing component files', () => {
    const dir = folder({ 'model_index.json': {}, 'unet/model.onnx': 'x', 'scheduler/scheduler_config.json': {} });
    rejects(dir, /is missing: vae_encoder\/model\.onnx, vae_decoder\/model\.onnx$/);
  });
});

describe('not a model folder', () => {
  it('says neither manifest.json nor model_index.json is there', () => {
    rejects(folder({ 'readme.txt': 'hi' }), /neither manifest\.json \(format "sds-model\/1"\) nor model_index\.json/);
  });

  it('says when the folder does not exist', () => {
    rejects(join(scratch, 'nowhere'), /does not exist/);
  });
});
