// The cluster's role and operator flags. (Which worker the front door picks is decided in Redis, by a
// script: tests/integration/cluster-reservation.test.ts runs it against a real redis-server.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseServeConfig } from '../../server/config.js';

test('cluster roles need Redis; standalone needs nothing', () => {
  assert.equal(parseServeConfig([], {}).role, 'standalone');
  assert.throws(
    () => parseServeConfig(['--role', 'worker'], {}),
    (e: unknown) => e instanceof ConfigError && /needs --redis/.test(e.message),
  );
  assert.throws(() => parseServeConfig(['--role', 'front', '--redis', 'http://x'], {}), ConfigError);
  assert.throws(() => parseServeConfig(['--role', 'boss'], {}), ConfigError);
  const w = parseServeConfig(['--role', 'worker', '--redis', 'redis://127.0.0.1:6379', '--public-url', 'http://10.0.0.5:8080/x'], {});
  assert.deepEqual([w.role, w.redisUrl, w.publicUrl, w.heartbeatMs], ['worker', 'redis://127.0.0.1:6379', 'http://10.0.0.5:8080', 1000]);
});

test('drain and registry-outage flags have defaults and name themselves when wrong', () => {
  const d = parseServeConfig([], {});
  assert.deepEqual([d.adminToken, d.drainTimeoutMs, d.registryGraceMs], [undefined, 600_000, 30_000]);
  const c = parseServeConfig(['--admin-token', 'ops-secret', '--drain-timeout-ms', '5000', '--registry-grace-ms', '0'], {});
  assert.deepEqual([c.adminToken, c.drainTimeoutMs, c.registryGraceMs], ['ops-secret', 5000, 0]);
  assert.equal(parseServeConfig([], { ADMIN_TOKEN: 'from-env' }).adminToken, 'from-env');
  assert.throws(() => parseServeConfig(['--drain-timeout-ms', 'soon'], {}), /--drain-timeout-ms must be an integer/);
  assert.throws(() => parseServeConfig(['--registry-grace-ms', '-1'], {}), /--registry-grace-ms/);
  assert.throws(
    () => parseServeConfig(['--admin-token', 'has space'], {}),
    (e: unknown) => e instanceof ConfigError && /--admin-token/.test(e.message) && !e.message.includes('has space'),
  );
});
