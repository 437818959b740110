// The Hugging Face cache conventions `sds models pull` and `--model hf:` share with the Hub's own clients:
// repository references, the cache folder's precedence of environment variables, which files the ONNX layout
// needs, and when a cached model counts as there.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { cachedSnapshot, hubCacheDir, hubEndpoint, parseHubModelRef, repoCacheDir } from '../../models/hub-cache.js';
import { layoutFiles } from '../../models/hub-download.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sds-hub-cache-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('hf references: org/name with an optional @revision; anything else is not one', () => {
  assert.deepEqual(parseHubModelRef('onnxruntime/sd-turbo'), { repo: 'onnxruntime/sd-turbo', revision: 'main' });
  assert.deepEqual(parseHubModelRef('onnxruntime/sd-turbo@v1.0'), { repo: 'onnxruntime/sd-turbo', revision: 'v1.0' });
  for (const bad of ['sd-turbo', 'a/b/c', '../x/y', 'a/b@', 'a/b@../../etc', 'a b/c']) assert.equal(parseHubModelRef(bad), undefined, bad);
});

test('the cache folder: HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub', () => {
  assert.equal(hubCacheDir({ HF_HUB_CACHE: '/c', HF_HOME: '/h' }), '/c');
  assert.equal(hubCacheDir({ HF_HOME: '/h', XDG_CACHE_HOME: '/x' }), '/h/hub');
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/huggingface/hub');
  assert.equal(hubCacheDir({}), path.join(homedir(), '.cache', 'huggingface', 'hub'));
  assert.equal(repoCacheDir('/c', 'onnxruntime/sd-turbo'), '/c/models--onnxruntime--sd-turbo');
  assert.equal(hubEndpoint({}), 'https://huggingface.co');
  assert.equal(hubEndpoint({ HF_ENDPOINT: 'https://mirror.example/' }), 'https://mirror.example');
});

test('the layout needs model_index.json and the component folders, external weights included, nothing else', () => {
  const listing = [
    'README.md',
    'model_index.json',
    'LICENSE',
    'images/sample.png',
    'unet/model.onnx',
    'unet/model.onnx.data',
    'unet/config.json',
    'unet/diffusion_pytorch_model.safetensors',
    'text_encoder_2/model.onnx',
    'tokenizer_2/vocab.json',
    'safety_checker/model.onnx',
    'vae_decoder/model.onnx',
    'scheduler/scheduler_config.json',
    'unet',
  ];
  assert.deepEqual(layoutFiles(listing), [
    'model_index.json',
    'unet/model.onnx',
    'unet/model.onnx.data',
    'unet/config.json',
    'text_encoder_2/model.onnx',
    'tokenizer_2/vocab.json',
    'vae_decoder/model.onnx',
    'scheduler/scheduler_config.json',
  ]);
});

test('a cached model counts once its ref and model_index.json are there (a pull writes the ref last)', () => {
  const root = repoCacheDir(dir, 'org/model');
  const commit = 'a'.repeat(40);
  const ref = { repo: 'org/model', revision: 'main' };
  mkdirSync(path.join(root, 'snapshots', commit), { recursive: true });
  assert.equal(cachedSnapshot(ref, dir), undefined, 'no ref yet');
  mkdirSync(path.join(root, 'refs'), { recursive: true });
  writeFileSync(path.join(root, 'refs', 'main'), commit);
  assert.equal(cachedSnapshot(ref, dir), undefined, 'no model_index.json yet');
  writeFileSync(path.join(root, 'snapshots', commit, 'model_index.json'), '{}');
  assert.equal(cachedSnapshot(ref, dir), path.join(root, 'snapshots', commit));
  assert.equal(
    cachedSnapshot({ repo: 'org/model', revision: commit }, dir),
    path.join(root, 'snapshots', commit),
    'a commit names its snapshot directly',
  );
  assert.equal(cachedSnapshot({ repo: 'org/other', revision: 'main' }, dir), undefined);
});
