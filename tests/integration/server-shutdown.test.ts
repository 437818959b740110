// `sds serve` as a process manager (systemd, Docker, a terminal's Ctrl-C) ends it: SIGTERM or SIGINT ends every
// session, tells each client why (a WebSocket client and a WHIP publisher's DataChannel get {"type":"closed"}),
// frees every native resource (the CLI checks its own counters and exits 1 if anything is left) and exits 0.
// Also the CLI's answer to bad flags: exit code 2 and a message naming the flag.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { createLoopbackClient, loadTestPhoto, makePanClip, type LoopbackClient } from '../../bench/loopback-client.js';
import { DEFAULT_MODEL } from '../support/server-harness.js';
import { requireDefaultModel } from '../support/test-dependency.js';
import { until } from '../support/until.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SDS = path.join(ROOT, 'dist', 'bin', 'sds.js');
const skip = requireDefaultModel();
// The CLI gives a shutdown 10 s before it exits anyway (with code 1); 20 s to see the exit leaves 10 s for a
// loaded machine to schedule the process at all.
const EXIT_WITHIN_MS = 20_000;

interface ServeProcess {
  child: ChildProcess;
  url: string;
  /** Every JSON log line so far. */
  log: Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: ChildProcess[] = [];
after(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

async function serve(): Promise<ServeProcess> {
  const child = spawn(
    process.execPath,
    [SDS, 'serve', '--host', '127.0.0.1', '--port', '0', '--model', DEFAULT_MODEL, '--intra-op-threads', '2', '--log-level', 'info'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  started.push(child);
  const log: Array<Record<string, unknown>> = [];
  let stderr = '';
  let pending = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      try {
        log.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        log.push({ msg: line });
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  // Loading the model and listening take a few seconds on an idle machine.
  const serving = await until(`sds serve to listen (stderr: ${stderr})`, () => log.find((l) => l.msg === 'serving'), 60_000, 100);
  return { child, url: String(serving.url), log, exited };
}

function exitWithin(p: ServeProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return Promise.race([
    p.exited,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`sds serve did not exit within ${ms} ms; log: ${JSON.stringify(p.log.slice(-5))}`)), ms),
    ),
  ]);
}

test('SIGTERM ends every session, tells each client why, frees everything and exits 0', { skip, timeout: 120_000 }, async () => {
  const server = await serve();
  let publisher: LoopbackClient | undefined;
  try {
    // A WebSocket fallback client...
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws`);
    const wsTexts: Array<{ type: string; reason?: string }> = [];
    ws.on('message', (data, isBinary) => {
      if (!isBinary) wsTexts.push(JSON.parse(data.toString()) as { type: string; reason?: string });
    });
    const wsClosed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    await until('the WebSocket hello', () => wsTexts.some((m) => m.type === 'hello'), 10_000);
    // ...and a WHIP publisher with a DataChannel, getting restyled frames back.
    const publisherTexts: string[] = [];
    let frames = 0;
    publisher = await createLoopbackClient({
      whipUrl: `${server.url}/whip`,
      codec: 'VP8',
      fps: 10,
      frames: await makePanClip(await loadTestPhoto(), 320, 240, 20),
      width: 320,
      height: 240,
      loop: true,
      dataChannel: true,
      onData: (text) => publisherTexts.push(text),
      onOutputFrame: () => frames++,
    });
    await until('restyled frames on the WHIP session', () => frames >= 3, 30_000);

    server.child.kill('SIGTERM');
    const exit = await exitWithin(server, EXIT_WITHIN_MS);
    assert.deepEqual(exit, { code: 0, signal: null }, `exit; log: ${JSON.stringify(server.log.slice(-6))}`);
    const closedSessions = server.log.filter((l) => l.msg === 'session closed');
    assert.equal(closedSessions.length, 2, JSON.stringify(closedSessions));
    assert.ok(closedSessions.every((l) => l.reason === 'server shutting down'));
    assert.ok(
      server.log.some((l) => l.msg === 'shut down' && l.signal === 'SIGTERM'),
      'the CLI found no resource left live',
    );
    assert.ok(!server.log.some((l) => l.msg === 'resources still live after shutdown'));
    // The clients were told, not just cut off.
    assert.deepEqual(
      wsTexts.find((m) => m.type === 'closed'),
      { type: 'closed', reason: 'server shutting down', retry: true },
    );
    assert.equal((await wsClosed).code, 1000, 'a WebSocket close frame, not a dropped connection (1006)');
    await until(
      `the publisher's DataChannel to say why (got ${JSON.stringify(publisherTexts)})`,
      () => publisherTexts.some((t) => t.includes('"closed"')),
      5000,
    );
    assert.deepEqual(JSON.parse(publisherTexts.find((t) => t.includes('"closed"'))!), {
      type: 'closed',
      reason: 'server shutting down',
      retry: true,
    });
  } finally {
    await publisher?.close({ deleteSession: false });
  }
});

test('SIGINT (Ctrl-C) shuts down the same way', { skip, timeout: 90_000 }, async () => {
  const server = await serve();
  server.child.kill('SIGINT');
  const exit = await exitWithin(server, EXIT_WITHIN_MS);
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.ok(server.log.some((l) => l.msg === 'shut down' && l.signal === 'SIGINT'));
});

test('bad flags: exit code 2 and a message naming the flag, before anything loads', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [SDS, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PORT: '' } });
  const cases: Array<{ args: string[]; message: RegExp }> = [
    { args: ['serve', '--port', 'abc'], message: /--port must be an integer from 0 to 65535 \(got "abc"\)/ },
    { args: ['serve', '--max-viewers', '-1'], message: /--max-viewers/ },
    { args: ['serve', '--codecs', 'AV1'], message: /--codecs must list VP8 and\/or H264/ },
    { args: ['serve', '--no-such-flag'], message: /Unknown option '--no-such-flag'[\s\S]*sds --help/ },
    { args: ['frobnicate'], message: /unknown command "frobnicate"/ },
  ];
  for (const { args, message } of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, `sds ${args.join(' ')}: exit ${r.status}; stderr ${r.stderr}`);
    assert.match(r.stderr, message, `sds ${args.join(' ')}`);
    assert.equal(r.stdout.includes('"msg":"serving"'), false, `sds ${args.join(' ')} did not start serving`);
  }
  const env = spawnSync(process.execPath, [SDS, 'serve'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PORT: 'eighty' } });
  assert.equal(env.status, 2);
  assert.match(env.stderr, /port/i, 'the environment variable is named as well');
});
