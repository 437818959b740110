// Start a real server in-process on a free loopback port for a test, with quiet logs.
import path from 'node:path';
import { PACKAGE_ROOT, parseServeConfig, type ServerConfig } from '../../server/config.js';
import { createLogger, startServer, type RunningServer, type ServerDependencies } from '../../server/server.js';

// SDS_TEST_MODEL points the end-to-end tests at another model folder (e.g. a freshly trained one).
export const DEFAULT_MODEL = process.env.SDS_TEST_MODEL ?? path.join(PACKAGE_ROOT, 'models', 'default');
export const SD_TINY_MODEL = path.join(PACKAGE_ROOT, 'tests', 'fixtures', 'sd-tiny');

export async function startTestServer(overrides: Partial<ServerConfig> = {}, deps: ServerDependencies = {}): Promise<RunningServer> {
  const config = { ...parseServeConfig([], {}), host: '127.0.0.1', port: 0, intraOpThreads: 2, ...overrides };
  return startServer(config, createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'), deps);
}
