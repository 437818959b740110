import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loopbackServeConfig, parseBenchArgs } from '../../bench/bench-args.js';
import { parseServeConfig } from '../../server/config.js';

test('bench commands hand serve flags, values included, on to serve and keep their own', () => {
  const { values, serveArgs } = parseBenchArgs(
    [
      '--seconds',
      '6',
      '--model',
      '/models/sd-turbo',
      '--provider',
      'cuda',
      '--resolution=512x512',
      '--no-cpu-fallback',
      '--size',
      '512x512',
    ],
    { seconds: { type: 'string' }, size: { type: 'string' } },
  );
  assert.deepEqual(values, { seconds: '6', size: '512x512' });
  assert.deepEqual(serveArgs, ['--model', '/models/sd-turbo', '--provider', 'cuda', '--resolution', '512x512', '--no-cpu-fallback']);
  const config = parseServeConfig(serveArgs, {});
  assert.equal(config.provider, 'cuda');
  assert.equal(config.fallbackToCpu, false);
});

test("a flag that is neither the command's nor serve's reaches serve, which rejects it", () => {
  const { serveArgs } = parseBenchArgs(['--frobnicate', 'x'], { seconds: { type: 'string' } });
  assert.ok(serveArgs.includes('--frobnicate'));
  assert.throws(() => parseServeConfig(serveArgs, {}), /frobnicate/);
});

test('a loopback bench server has room for the load it runs and admits it unless a ceiling is given', () => {
  const free = loopbackServeConfig(['--max-sessions', '1'], { sessions: 4, viewers: 8 });
  assert.deepEqual(
    [free.host, free.port, free.maxSessions, free.maxSessionsPerClient, free.admissionCeiling],
    ['127.0.0.1', 0, 4, 4, Number.POSITIVE_INFINITY],
  );
  assert.ok(free.maxViewers >= 8);
  const capped = loopbackServeConfig(['--admission-ceiling', '0.5'], { sessions: 1 });
  assert.equal(capped.admissionCeiling, 0.5);
});
