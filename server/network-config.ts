// The ICE network flags (--announce-address, --ice-interfaces, --udp-port-range) parsed into an IceNetwork,
// and the start-up check that the port range can hold every peer the session limits allow. Interface names
// are resolved against this machine's interfaces once, at start, so a typo stops the server instead of
// silently gathering on every interface.
import { isIP } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { IceNetwork } from '../stream/ice-network.js';
import { ConfigError } from './config-error.js';

export type Interfaces = NodeJS.Dict<NetworkInterfaceInfo[]>;

export interface NetworkFlags {
  announce?: string;
  interfaces?: string;
  portRange?: string;
}

export function parseIceNetwork(flags: NetworkFlags, interfaces: Interfaces = networkInterfaces()): IceNetwork {
  const network: IceNetwork = { announcedAddresses: announced(flags.announce) };
  const hosts = chosenInterfaces(flags.interfaces, interfaces);
  if (hosts) network.hostAddresses = hosts;
  const range = portRange(flags.portRange);
  if (range) network.portRange = range;
  return network;
}

/**
 * The ICE network every peer uses. A server listening on a loopback address (`--host 127.0.0.1`, as tests and
 * benches run it) serves only this machine, so unless --ice-interfaces says otherwise its peers offer that loopback
 * address, not every interface's: media then stays on loopback as the signalling does.
 */
export function peerIceNetwork(network: IceNetwork, host: string): IceNetwork {
  if (network.hostAddresses || !isLoopbackAddress(host)) return network;
  return { ...network, hostAddresses: [unbracket(host)] };
}

function isLoopbackAddress(host: string): boolean {
  const address = unbracket(host);
  return (isIP(address) === 4 && address.startsWith('127.')) || address === '::1';
}

function list(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function announced(raw: string | undefined): string[] {
  const addresses = list(raw).map(unbracket);
  for (const a of addresses) {
    if (isIP(a) === 0) {
      throw new ConfigError(`--announce-address must be an IPv4 or IPv6 address, e.g. 203.0.113.7 (got "${a}")`);
    }
    if (a === '0.0.0.0' || a === '::') {
      throw new ConfigError(`--announce-address must be an address clients can reach, not the wildcard "${a}"`);
    }
  }
  return [...new Set(addresses)];
}

/** `eth0,lo,10.0.0.5` → the addresses to gather; names take their IPv4 and IPv6 addresses (not link-local). */
function chosenInterfaces(raw: string | undefined, interfaces: Interfaces): string[] | undefined {
  const entries = list(raw);
  if (entries.length === 0) return undefined;
  const local = Object.values(interfaces).flatMap((infos) => infos ?? []);
  const addresses: string[] = [];
  for (const entry of entries) {
    const address = unbracket(entry);
    if (isIP(address) !== 0) {
      if (!local.some((info) => info.address === address)) {
        throw new ConfigError(
          `--ice-interfaces: ${address} is not an address of this machine (its addresses: ${local.map((i) => i.address).join(', ')})`,
        );
      }
      addresses.push(address);
      continue;
    }
    const infos = interfaces[entry];
    if (!infos) {
      throw new ConfigError(
        `--ice-interfaces: no network interface or address "${entry}" on this machine (interfaces: ${Object.keys(interfaces).join(', ')})`,
      );
    }
    const usable = infos.filter((i) => !isLinkLocal(i.address)).map((i) => i.address);
    if (usable.length === 0)
      throw new ConfigError(`--ice-interfaces: interface "${entry}" has no address ICE can use (link-local only, or none)`);
    addresses.push(...usable);
  }
  return [...new Set(addresses)];
}

function isLinkLocal(address: string): boolean {
  return address.startsWith('169.254.') || address.toLowerCase().startsWith('fe80:');
}

function unbracket(address: string): string {
  return address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
}

function portRange(raw: string | undefined): [number, number] | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(raw);
  const min = Number(m?.[1]);
  const max = Number(m?.[2]);
  if (!m || min < 1 || max > 65535) {
    throw new ConfigError(`--udp-port-range must be MIN-MAX with ports from 1 to 65535, e.g. 40000-40100 (got "${raw}")`);
  }
  // werift refuses a range of one port (min must be below max).
  if (min >= max) throw new ConfigError(`--udp-port-range is empty or inverted: MIN must be below MAX (got "${raw}")`);
  return [min, max];
}

/**
 * How many UDP sockets one server-side peer connection binds: one per candidate address (werift bundles a
 * peer's media on one transport, and gathers no TCP candidates). `defaultAddresses` is what werift gathers
 * when no interfaces are chosen.
 */
export function socketsPerPeer(network: IceNetwork, interfaces: Interfaces = networkInterfaces()): number {
  const hosts = network.hostAddresses ?? weriftDefaultAddresses(interfaces);
  return new Set([...network.announcedAddresses, ...hosts]).size;
}

/** The addresses werift gathers by default: every non-internal, non-link-local address, skipping veth/tun/tap-like interfaces. */
function weriftDefaultAddresses(interfaces: Interfaces): string[] {
  const skipped = ['ipsec', 'tun', 'utun', 'tap', 'vmnet', 'veth'];
  return Object.entries(interfaces)
    .filter(([name]) => !skipped.some((prefix) => name.startsWith(prefix)))
    .flatMap(([, infos]) => infos ?? [])
    .filter((i) => !i.internal && !isLinkLocal(i.address))
    .map((i) => i.address);
}

/** Stops the server when the port range cannot hold every peer connection the limits allow at once. */
export function checkPortRangeCapacity(
  network: IceNetwork,
  limits: { maxSessions: number; maxViewers: number },
  interfaces: Interfaces = networkInterfaces(),
): void {
  if (!network.portRange) return;
  const [min, max] = network.portRange;
  const ports = max - min + 1;
  const peers = limits.maxSessions + limits.maxViewers;
  const perPeer = socketsPerPeer(network, interfaces);
  const needed = peers * perPeer;
  if (ports < needed) {
    throw new ConfigError(
      `--udp-port-range ${min}-${max} has ${ports} ports, but ${peers} peer connections (--max-sessions ${limits.maxSessions} + ` +
        `--max-viewers ${limits.maxViewers}) × ${perPeer} candidate address${perPeer === 1 ? '' : 'es'} each need ${needed}: ` +
        `widen the range, lower the limits, or gather on fewer addresses (--ice-interfaces)`,
    );
  }
}
