import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBenchArgs } from '../../bench/bench-args.js';
import { parseServeConfig } from '../../server/config.js';

test('bench commands hand serve flags, values included, on to serve and keep their own', () => {
  const { values, serveArgs } = parseBenchArgs(
    ['--seconds', '6', '--model', '/models/sd-turbo', '--provider', 'cuda', '--resolution=512x512', '--no-cpu-fallback', '--size', '512x512'],
    { seconds: { type: 'string' }, size: { type: 'string' } },
  );
  assert.deepEqual(values, { seconds: '6', size: '512x512' });
  assert.deepEqual(serveArgs, ['--model', '/models/sd-turbo', '--provider', 'cuda', '--resolution', '512x512', '--no-cpu-fallback']);
  const config = parseServeConfig(serveArgs, {});
  assert.equal(config.provider, 'cuda');
  assert.equal(config.fallbackToCpu, false);
});

test('a flag that is neither the command\'s nor serve\'s reaches serve, which rejects it', () => {
  const { serveArgs } = parseBenchArgs(['--frobnicate', 'x'], { seconds: { type: 'string' } });
  assert.ok(serveArgs.includes('--frobnicate'));
  assert.throws(() => parseServeConfig(serveArgs, {}), /frobnicate/);
});
