// The argument split shared by the bench commands that start a server in-process (e2e, browser, soak): their own
// flags, and every other flag handed on to `serve` (model, provider, resolution, budget-ms, ...). Serve's flags are
// declared to the parser too, so that `--model DIR` reads DIR as the flag's value rather than as a stray argument.
import { parseArgs } from 'node:util';
import { parseServeConfig, SERVE_PARSE_OPTIONS, type ServerConfig } from '../server/config.js';

export type BenchOptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

export interface BenchArgs {
  /** The command's own flags. */
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  /** Everything else, in order, for parseServeConfig. */
  serveArgs: string[];
}

export function parseBenchArgs(argv: string[], own: BenchOptionSpec): BenchArgs {
  const { values, tokens } = parseArgs({ args: argv, strict: false, tokens: true, options: { ...SERVE_PARSE_OPTIONS, ...own } });
  const serveArgs: string[] = [];
  for (const t of tokens ?? []) {
    if (t.kind === 'option' && !(t.name in own)) serveArgs.push(t.rawName, ...(t.value !== undefined ? [t.value] : []));
  }
  const ownValues: BenchArgs['values'] = {};
  for (const name of Object.keys(own)) ownValues[name] = values[name];
  return { values: ownValues, serveArgs };
}

/**
 * The serve config of a bench that runs its own load on loopback: listen on 127.0.0.1, any port, room for the
 * sessions (and viewers) it is asked to run, and admission control off unless a ceiling is given, since it
 * measures exactly the load it is asked to.
 */
export function loopbackServeConfig(serveArgs: string[], load: { sessions: number; viewers?: number }): ServerConfig {
  const base = parseServeConfig(serveArgs);
  return {
    ...base,
    host: '127.0.0.1',
    port: 0,
    maxSessions: Math.max(base.maxSessions, load.sessions),
    maxSessionsPerClient: Math.max(base.maxSessionsPerClient, load.sessions),
    maxViewers: Math.max(base.maxViewers, load.viewers ?? 0),
    admissionCeiling: serveArgs.includes('--admission-ceiling') ? base.admissionCeiling : Number.POSITIVE_INFINITY,
    logLevel: process.env.LOG_LEVEL ?? 'warn',
  };
}
