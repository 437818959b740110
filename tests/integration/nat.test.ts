// A real NAT between client and server, built from network namespaces (iproute2 + nftables, as root):
//
//   client 192.168.1.2 ── home router (masquerade as 198.51.100.2) ── cloud 1:1 NAT ── server 10.10.0.2
//                                                                   198.51.100.10 ⇄ 10.10.0.2 (DNAT + SNAT)
//                                                                   coturn on 198.51.100.1
//
// The server (sds serve) runs in its namespace and the client (tests/support/nat-client.ts, the shared werift
// client) in its own. Without --announce-address the server offers only 10.10.0.2, which the client cannot
// reach, and ICE fails; with --announce-address 198.51.100.10 restyled frames come back. With coturn as the
// relay, a client restricted to relayed candidates reaches the same server without any announced address.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PACKAGE_ROOT } from '../../server/config.js';
import type { NatClientRequest, NatClientResult } from '../support/nat-client.js';
import { namespaceSkip, TestNetwork } from '../support/netns.js';
import { DEFAULT_MODEL } from '../support/server-harness.js';
import { requireDefaultModel } from '../support/test-dependency.js';

const SDS_BIN = path.join(PACKAGE_ROOT, 'dist', 'bin', 'sds.js');
const CLIENT = path.join(PACKAGE_ROOT, 'dist', 'tests', 'support', 'nat-client.js');
const PHOTO = path.join(DEFAULT_MODEL, 'testdata', 'heldout.png');
const PUBLIC_IP = '198.51.100.10';
const TURN_IP = '198.51.100.1';
const TURN_USER = { username: 'sds', credential: 'nat-test' };

const skip = requireDefaultModel() || namespaceSkip({ nft: 'nftables', turnserver: 'coturn' });

describe('behind a 1:1 NAT', { skip, timeout: 240_000 }, () => {
  const net = new TestNetwork();
  let client = '';
  let server = '';
  let cloud = '';
  let workDir = '';
  /** The server without an announced address, shared by the first two cases. */
  let plain: Awaited<ReturnType<typeof startServer>> | undefined;

  before(() => {
    workDir = mkdtempSync(path.join(tmpdir(), 'sds-nat-'));
    client = net.namespace('cli');
    const home = net.namespace('home');
    cloud = net.namespace('nat');
    server = net.namespace('srv');
    net.link({ ns: client, ifname: 'eth0', cidr: '192.168.1.2/24' }, { ns: home, ifname: 'lan0', cidr: '192.168.1.1/24' });
    net.link({ ns: home, ifname: 'wan0', cidr: '198.51.100.2/24' }, { ns: cloud, ifname: 'wan0', cidr: `${TURN_IP}/24` });
    net.link({ ns: cloud, ifname: 'lan0', cidr: '10.10.0.1/24' }, { ns: server, ifname: 'eth0', cidr: '10.10.0.2/24' });
    net.exec(cloud, 'ip', 'addr', 'add', `${PUBLIC_IP}/32`, 'dev', 'wan0');
    net.exec(client, 'ip', 'route', 'add', 'default', 'via', '192.168.1.1');
    net.exec(server, 'ip', 'route', 'add', 'default', 'via', '10.10.0.1');
    for (const router of [home, cloud]) net.exec(router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    // The client's home router: everything from the LAN leaves as 198.51.100.2.
    net.nft(
      home,
      `table ip nat {
      chain postrouting { type nat hook postrouting priority srcnat; ip saddr 192.168.1.0/24 oifname "wan0" masquerade; }
    }`,
    );
    // The cloud's 1:1 NAT: the public address maps to the server's private one, all ports, both ways.
    net.nft(
      cloud,
      `table ip nat {
      chain prerouting { type nat hook prerouting priority dstnat; ip daddr ${PUBLIC_IP} dnat to 10.10.0.2; }
      chain postrouting { type nat hook postrouting priority srcnat; ip saddr 10.10.0.2 oifname "wan0" snat to ${PUBLIC_IP}; }
    }`,
    );
  });
  after(async () => {
    await net.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  test('without --announce-address the client cannot connect: the server offers only its private address', async () => {
    plain = await startServer(net, server, []);
    const result = await runClient(net, client, { connectTimeoutMs: 6000, seconds: 0 });
    assert.equal(result.connected, false, `connected through the NAT without an announced address: ${JSON.stringify(result)}`);
    assert.match(result.error ?? '', /timed out/);
  });

  test('through coturn: a client restricted to relayed candidates reaches the server without an announced address', async (t) => {
    const turn = net.spawn(cloud, 'turnserver', [
      '-n',
      '--no-cli',
      '--no-tls',
      '--no-dtls',
      '--listening-ip',
      TURN_IP,
      '--relay-ip',
      TURN_IP,
      '--listening-port',
      '3478',
      '--min-port',
      '49152',
      '--max-port',
      '49200',
      '--lt-cred-mech',
      '--realm',
      'nat.test',
      '--user',
      `${TURN_USER.username}:${TURN_USER.credential}`,
      '--log-file',
      'stdout',
      '--simple-log',
      '--pidfile',
      path.join(workDir, 'turnserver.pid'),
      '--userdb',
      path.join(workDir, 'turndb'),
    ]);
    let turnLog = '';
    turn.stdout!.on('data', (chunk: Buffer) => (turnLog = (turnLog + chunk.toString()).slice(-4000)));
    const sds = plain ?? (plain = await startServer(net, server, []));
    try {
      const result = await runClient(net, client, {
        connectTimeoutMs: 10_000,
        seconds: 4,
        ice: { iceServers: [{ urls: `turn:${TURN_IP}:3478?transport=udp`, ...TURN_USER }], iceTransportPolicy: 'relay' },
      });
      assert.equal(result.connected, true, `${JSON.stringify(result)}\ncoturn log:\n${turnLog}\nserver log:\n${sds.log()}`);
      t.diagnostic(`relayed: ${result.framesReceived} restyled frames back of ${result.framesSent} sent in 4 s`);
      assert.ok(
        result.framesReceived >= 10,
        `${result.framesReceived} restyled frames came back through the relay (of ${result.framesSent} sent)`,
      );
      assert.ok(
        result.offerCandidateTypes.length > 0 && result.offerCandidateTypes.every((t) => t === 'relay'),
        `the client offered only relayed candidates: ${result.offerCandidateTypes.join(' ')}`,
      );
    } finally {
      await stop(turn);
    }
  });
  test('with --announce-address <public IP> restyled frames come back through the NAT', async (t) => {
    if (plain) await stop(plain.process);
    plain = undefined;
    const sds = await startServer(net, server, ['--announce-address', PUBLIC_IP, '--udp-port-range', '40000-40200']);
    try {
      const result = await runClient(net, client, { connectTimeoutMs: 10_000, seconds: 4 });
      assert.equal(result.connected, true, `${JSON.stringify(result)}\nserver log:\n${sds.log()}`);
      assert.ok(
        result.answerCandidates.some((c) => c.startsWith(`${PUBLIC_IP}:`)),
        `the answer announces ${PUBLIC_IP}: ${result.answerCandidates.join(' ')}`,
      );
      for (const c of result.answerCandidates) {
        const port = Number(c.split(':').pop());
        assert.ok(port >= 40000 && port <= 40200, `candidate ${c} is in --udp-port-range`);
      }
      t.diagnostic(
        `announced: ${result.framesReceived} restyled frames back of ${result.framesSent} sent in 4 s; answer candidates ${result.answerCandidates.join(' ')}`,
      );
      assert.ok(result.framesReceived >= 10, `${result.framesReceived} restyled frames came back (of ${result.framesSent} sent)`);
    } finally {
      await stop(sds.process);
    }
  });
});

/** `sds serve` in the server's namespace, on :8080 with the embedded model; resolves once it serves. */
async function startServer(net: TestNetwork, ns: string, flags: string[]): Promise<{ process: ChildProcess; log: () => string }> {
  const child = net.spawn(
    ns,
    process.execPath,
    [SDS_BIN, 'serve', '--port', '8080', '--intra-op-threads', '1', '--max-sessions', '2', '--max-viewers', '2', ...flags],
    { cwd: PACKAGE_ROOT },
  );
  let log = '';
  const keep = (chunk: Buffer): void => {
    log = (log + chunk.toString()).slice(-8000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sds serve did not start within 60 s:\n${log}`)), 60_000);
    const check = (): void => {
      if (!/"msg":"serving"/.test(log)) return;
      clearTimeout(timer);
      child.stdout!.off('data', check);
      resolve();
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sds serve exited (${code}):\n${log}`));
    });
  });
  return { process: child, log: () => log };
}

async function runClient(net: TestNetwork, ns: string, request: Omit<NatClientRequest, 'whipUrl' | 'photo'>): Promise<NatClientResult> {
  const full: NatClientRequest = { whipUrl: `http://${PUBLIC_IP}:8080/whip`, photo: PHOTO, ...request };
  const child = net.spawn(ns, process.execPath, [CLIENT, JSON.stringify(full)], { cwd: PACKAGE_ROOT });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4000)));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const line = out.trim().split('\n').pop() ?? '';
  assert.equal(code, 0, `the client crashed (${code}): ${err}`);
  return JSON.parse(line) as NatClientResult;
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
