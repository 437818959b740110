#!/usr/bin/env node
// The command-line entry point: `sds serve` (the default for `npm start`), `sds cert` and `sds bench`.
import { ConfigError, SERVE_OPTIONS, parseServeConfig } from '../server/config.js';

const HELP = `sds — real-time video restyling server (WebRTC in, restyled WebRTC out)

Usage:
  sds serve [options]        serve the web app, WHIP ingest and the API (npm start)
  sds models pull <org>/<name> [--revision R]
                             download an ONNX export from the Hugging Face Hub (sds models --help)
  sds cert [--host IP]...    write a self-signed certificate for serving HTTPS on a LAN address (sds cert --help)
  sds bench <kind> [options] run a benchmark; kinds: model, e2e, browser, quality, flow, batch, consistency, soak, codec, cluster-burst (sds bench --help)
  sds --help

serve options (flag, or environment variable):
${Object.entries(SERVE_OPTIONS)
  .map(([flag, [env, text]]) => `  --${flag.padEnd(18)} ${env.padEnd(18)} ${text}`)
  .join('\n')}
`;

/** How long a shutdown may take (sessions, peers, model workers) before the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 1 : 0;
  }
  if (command === 'serve') {
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(HELP);
      return 0;
    }
    const config = parseServeConfig(rest);
    const { startServer, createLogger } = await import('../server/server.js');
    const logger = createLogger(config.logLevel);
    // The front door of a cluster loads no model: it only redirects to workers (README "Scaling out").
    const server =
      config.role === 'front'
        ? await (await import('../server/cluster/front-door.js')).startFrontDoor(config, logger)
        : await startServer(config, logger);
    // SIGTERM/SIGINT: end every session (its client is told why), free everything, exit 0. Exit 1 if the close
    // fails, leaves native resources live (a leak the next start would not show), or outlasts SHUTDOWN_TIMEOUT_MS.
    const stop = (signal: string): void => {
      logger.info({ signal }, 'shutting down');
      setTimeout(() => {
        logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'shutdown did not finish in time; exiting');
        process.exit(1);
      }, SHUTDOWN_TIMEOUT_MS).unref();
      server.close().then(
        async () => {
          const { liveResources } = await import('../stream/resource-counters.js');
          const left = Object.fromEntries(Object.entries(liveResources()).filter(([, n]) => n !== 0));
          if (Object.keys(left).length > 0) {
            logger.error({ left }, 'resources still live after shutdown');
            process.exit(1);
          }
          logger.info({ signal }, 'shut down');
          process.exit(0);
        },
        (error: Error) => {
          logger.error({ err: error.message }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    if ('drain' in server) {
      // A drain started by POST /admin/drain ends the process too, once it has closed the server.
      void server.drained.then(() => process.exit(0));
      // A worker drains on SIGTERM (a rolling restart, an orchestrator stopping it); a second SIGTERM stops it now.
      process.once('SIGTERM', () => {
        if (config.role === 'standalone') return stop('SIGTERM');
        process.once('SIGTERM', () => stop('SIGTERM'));
        server.drain('SIGTERM').catch(() => process.exit(1));
      });
    } else {
      process.once('SIGTERM', () => stop('SIGTERM'));
    }
    return -1; // keep running
  }
  if (command === 'models' || command === 'pull') {
    const { runModelsCommand } = await import('../server/models-command.js');
    return runModelsCommand(command === 'pull' ? ['pull', ...rest] : rest);
  }
  if (command === 'cert') {
    const { runCertCommand } = await import('../server/cert-command.js');
    return runCertCommand(rest);
  }
  if (command === 'bench') {
    const { runBenchCli } = await import('../bench/cli.js');
    return runBenchCli(rest);
  }
  process.stderr.write(`unknown command "${command}"\n\n${HELP}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError || (error instanceof Error && (error.name === 'ModelLoadError' || error.name === 'PullError'))) {
      process.stderr.write(`sds: ${error.message}\n`);
      process.exit(2);
    }
    if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`sds: ${error.message}\nRun "sds --help" for the options.\n`);
      process.exit(2);
    }
    process.stderr.write(`sds: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
