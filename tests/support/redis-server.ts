// Whether the cluster tests can run here. The redis-server they start is bench/loopback-cluster.ts's
// RedisServer (the cluster bench starts the same one, and bench/ may not import tests/).
import { spawnSync } from 'node:child_process';

export const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;
export const NO_REDIS = 'redis-server is not installed (apt-get install redis-server; .ci/run does)';
