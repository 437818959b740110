// The cluster's pure decisions: which worker the front door picks, and the role flags.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseWorker, type WorkerRecord } from '../../server/cluster/registry.js';
import { ConfigError, parseServeConfig } from '../../server/config.js';

const worker = (id: string, sessions: number, headroom: number, pending = 0, maxSessions = 4): WorkerRecord & { pending: number } => ({
  id,
  url: `http://${id}:8080`,
  sessions,
  maxSessions,
  viewers: 0,
  streams: [],
  headroom,
  model: 'm',
  updatedAtMs: 0,
  pending,
});

test('the front door sends a publisher to the least loaded worker with room, counting sessions already sent its way', () => {
  assert.equal(chooseWorker([worker('a', 2, 0.5), worker('b', 1, 0.5)])?.id, 'b');
  assert.equal(chooseWorker([worker('a', 1, 0.5), worker('b', 0, 0.5, 2)])?.id, 'a', 'b has two on their way');
  assert.equal(chooseWorker([worker('a', 1, 0), worker('b', 3, 0.1)])?.id, 'b', 'no headroom, no session');
  assert.equal(chooseWorker([worker('a', 1, 0.2), worker('b', 1, 0.6)])?.id, 'b', 'a tie goes to the most headroom');
  assert.equal(chooseWorker([worker('a', 4, 0.5), worker('b', 3, 0.5, 1)]), undefined, 'every slot taken');
  assert.equal(chooseWorker([]), undefined);
});

test('cluster roles need Redis; standalone needs nothing', () => {
  assert.equal(parseServeConfig([], {}).role, 'standalone');
  assert.throws(() => parseServeConfig(['--role', 'worker'], {}), (e: unknown) => e instanceof ConfigError && /needs --redis/.test(e.message));
  assert.throws(() => parseServeConfig(['--role', 'front', '--redis', 'http://x'], {}), ConfigError);
  assert.throws(() => parseServeConfig(['--role', 'boss'], {}), ConfigError);
  const w = parseServeConfig(['--role', 'worker', '--redis', 'redis://127.0.0.1:6379', '--public-url', 'http://10.0.0.5:8080/x'], {});
  assert.deepEqual([w.role, w.redisUrl, w.publicUrl, w.heartbeatMs], ['worker', 'redis://127.0.0.1:6379', 'http://10.0.0.5:8080', 1000]);
});
