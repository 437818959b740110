// Test hosts made of Linux network namespaces joined by veth pairs (iproute2, as root), for tests that need
// real routing, NAT and non-loopback addresses. Every namespace, link and process a TestNetwork makes is gone
// after close(). Interfaces are named ethN/lanN/wanN, never veth*: werift skips veth-named interfaces.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

/** Why namespaces cannot be made here (not root, no iproute2, no permission), or undefined when they can. */
export function namespaceUnavailable(tools: string[] = []): string | undefined {
  for (const tool of ['ip', ...tools]) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const probe = `sds-probe-${process.pid}`;
  const made = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (made.status !== 0) return `cannot make a network namespace: ${made.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

/**
 * The node:test `skip` value for a namespace test: a message where namespaces cannot be made; but under CI
 * (CI=true), where .ci/run installed the tools, a missing tool is a failure (undefined here; the test then fails
 * on the first command).
 */
export function namespaceSkip(tools: string[] = []): string | false {
  const reason = namespaceUnavailable(tools);
  if (!reason) return false;
  if (process.env.CI === 'true' && reason.endsWith('is not installed')) return false;
  return `skipped: ${reason}`;
}

export class TestNetwork {
  private readonly namespaces: string[] = [];
  private readonly processes: ChildProcess[] = [];
  private readonly prefix = `sds${process.pid % 100000}`;

  /** A namespace with loopback up; returns its full name. */
  namespace(name: string): string {
    const ns = `${this.prefix}-${name}`;
    run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    this.exec(ns, 'ip', 'link', 'set', 'lo', 'up');
    return ns;
  }

  /** A veth pair from `a` to `b`, each end named and addressed (CIDR) and up. */
  link(a: { ns: string; ifname: string; cidr: string }, b: { ns: string; ifname: string; cidr: string }): void {
    run('ip', ['link', 'add', a.ifname, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns]);
    for (const end of [a, b]) {
      this.exec(end.ns, 'ip', 'addr', 'add', end.cidr, 'dev', end.ifname);
      this.exec(end.ns, 'ip', 'link', 'set', end.ifname, 'up');
    }
  }

  /** Run a command in `ns` to completion; throws with its stderr when it fails. */
  exec(ns: string, command: string, ...args: string[]): string {
    return run('ip', ['netns', 'exec', ns, command, ...args]);
  }

  /** An nftables ruleset (nft -f syntax) loaded in `ns`. */
  nft(ns: string, ruleset: string): void {
    run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], ruleset);
  }

  /** Start a long-running process in `ns`; it is killed on close(). */
  spawn(ns: string, command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.processes.push(child);
    return child;
  }

  async close(): Promise<void> {
    await Promise.all(this.processes.map(stop));
    // Deleting a namespace removes its interfaces (and the veth peers in the other namespaces).
    for (const ns of this.namespaces.reverse()) spawnSync('ip', ['netns', 'del', ns]);
  }
}

function run(command: string, args: string[], input?: string): string {
  const result = spawnSync(command, args, { encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr || result.error?.message}`);
  return result.stdout;
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
