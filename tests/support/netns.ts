// Test hosts made of Linux network namespaces joined by veth pairs (iproute2, as root), for tests that need
// real routing, NAT and non-loopback addresses. Every namespace, link and process a TestNetwork makes is gone
// after close(). Interfaces are named ethN/lanN/wanN, never veth*: werift skips veth-named interfaces.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { requireOrSkip } from './test-dependency.js';

/**
 * The node:test `skip` value for a namespace test. A missing tool (iproute2's ip, or one in `tools`, with its
 * Debian package) is a missing test dependency: a skip here, a failed test under CI=true, where .ci/run installs
 * it (tests/support/test-dependency.ts). A machine that has the tools but cannot make namespaces (not root, no
 * permission) skips with the reason.
 */
export function namespaceSkip(tools: Record<string, string> = {}): string | false {
  for (const [tool, debianPackage] of Object.entries({ ip: 'iproute2', ...tools })) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      return requireOrSkip(debianPackage, `${tool} is not installed (Debian package ${debianPackage})`);
    }
  }
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const probe = `sds-probe-${process.pid}`;
  const made = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (made.status !== 0) return `cannot make a network namespace here: ${made.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return false;
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
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr || result.error?.message}`);
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
