// The ICE network flags: parsed from flags and environment, resolved against this machine's interfaces
// (injected here), turned into werift's settings in one place, and refused at start with the flag's name.
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, test } from 'node:test';
import { ConfigError, parseServeConfig } from '../../server/config.js';
import { peerIceNetwork, socketsPerPeer, type Interfaces } from '../../server/network-config.js';
import { peerNetworkConfig } from '../../stream/ice-network.js';

function info(address: string, internal = false): NetworkInterfaceInfo {
  const family = address.includes(':') ? 'IPv6' : 'IPv4';
  return {
    address,
    family,
    internal,
    netmask: '',
    mac: '00:00:00:00:00:00',
    cidr: null,
    ...(family === 'IPv6' ? { scopeid: 0 } : {}),
  } as NetworkInterfaceInfo;
}

/** A machine with loopback, one LAN interface (IPv4, IPv6, link-local) and a docker bridge. */
const MACHINE: Interfaces = {
  lo: [info('127.0.0.1', true), info('::1', true)],
  eth0: [info('10.0.0.5'), info('fd00::5'), info('fe80::1')],
  docker0: [info('172.17.0.1')],
  vethabc: [info('169.254.3.3')],
};

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseServeConfig(argv, env, MACHINE);

function refused(argv: string[], pattern: RegExp, env: NodeJS.ProcessEnv = {}): void {
  assert.throws(
    () => parse(argv, env),
    (err: unknown) => err instanceof ConfigError && pattern.test(err.message),
  );
}

describe('--announce-address', () => {
  test('is repeatable and takes comma lists; duplicates collapse; IPv6 may be bracketed', () => {
    const { network } = parse(['--announce-address', '203.0.113.7', '--announce-address', '198.51.100.1, [2001:db8::7],203.0.113.7']);
    assert.deepEqual(network.announcedAddresses, ['203.0.113.7', '198.51.100.1', '2001:db8::7']);
  });
  test('comes from ANNOUNCE_ADDRESSES when the flag is absent', () => {
    assert.deepEqual(parse([], { ANNOUNCE_ADDRESSES: '203.0.113.7' }).network.announcedAddresses, ['203.0.113.7']);
  });
  test('refuses a host name, a malformed address and the wildcard, naming the flag', () => {
    refused(['--announce-address', 'example.com'], /^--announce-address must be an IPv4 or IPv6 address.*"example\.com"/);
    refused(['--announce-address', '300.1.1.1'], /--announce-address .*"300\.1\.1\.1"/);
    refused(['--announce-address', '0.0.0.0'], /--announce-address .*wildcard/);
  });
});

describe('--ice-interfaces', () => {
  test('a name takes its IPv4 and IPv6 addresses but not link-local; loopback and plain addresses are allowed', () => {
    assert.deepEqual(parse(['--ice-interfaces', 'eth0']).network.hostAddresses, ['10.0.0.5', 'fd00::5']);
    assert.deepEqual(parse(['--ice-interfaces', 'lo']).network.hostAddresses, ['127.0.0.1', '::1']);
    assert.deepEqual(parse([], { ICE_INTERFACES: '127.0.0.1,172.17.0.1' }).network.hostAddresses, ['127.0.0.1', '172.17.0.1']);
  });
  test('absent: werift gathers its own list', () => {
    assert.equal(parse([]).network.hostAddresses, undefined);
  });
  test('an unknown name or an address of another machine stops the start, naming the flag', () => {
    refused(['--ice-interfaces', 'wlan0'], /^--ice-interfaces: no network interface or address "wlan0".*eth0/);
    refused(['--ice-interfaces', '10.9.9.9'], /^--ice-interfaces: 10\.9\.9\.9 is not an address of this machine/);
    refused(['--ice-interfaces', 'vethabc'], /^--ice-interfaces: interface "vethabc" has no address ICE can use/);
  });
});

describe('--udp-port-range', () => {
  test('MIN-MAX, from the flag or UDP_PORT_RANGE', () => {
    assert.deepEqual(parse(['--udp-port-range', '40000-40200']).network.portRange, [40000, 40200]);
    assert.deepEqual(parse([], { UDP_PORT_RANGE: '40000 - 40200' }).network.portRange, [40000, 40200]);
    assert.equal(parse([]).network.portRange, undefined);
  });
  test('refuses what is not a range, an empty or inverted one, and ports past 65535', () => {
    refused(['--udp-port-range', '40000'], /^--udp-port-range must be MIN-MAX/);
    refused(['--udp-port-range', '0-100'], /^--udp-port-range must be MIN-MAX/);
    refused(['--udp-port-range', '60000-70000'], /^--udp-port-range must be MIN-MAX/);
    refused(['--udp-port-range', '40100-40000'], /^--udp-port-range is empty or inverted/);
    refused(['--udp-port-range', '40000-40000'], /^--udp-port-range is empty or inverted/);
  });
  test('a range smaller than the session limits need stops the start, with the arithmetic', () => {
    // Default gathering on MACHINE: eth0's two addresses and docker0's (veth and link-local skipped) = 3 sockets a peer.
    refused(
      ['--udp-port-range', '40000-40010', '--max-sessions', '2', '--max-viewers', '2'],
      /--udp-port-range 40000-40010 has 11 ports, but 4 peer connections \(--max-sessions 2 \+ --max-viewers 2\) × 3 candidate addresses each need 12/,
    );
    assert.doesNotThrow(() => parse(['--udp-port-range', '40000-40011', '--max-sessions', '2', '--max-viewers', '2']));
    // Fewer addresses, fewer ports: loopback plus one announced address.
    assert.doesNotThrow(() =>
      parse([
        '--udp-port-range',
        '40000-40007',
        '--max-sessions',
        '2',
        '--max-viewers',
        '2',
        '--ice-interfaces',
        '127.0.0.1',
        '--announce-address',
        '203.0.113.7',
      ]),
    );
  });
  test('the front door holds no peers, so its range is not sized', () => {
    assert.doesNotThrow(() => parse(['--role', 'front', '--redis', 'redis://127.0.0.1:6379', '--udp-port-range', '40000-40001']));
  });
});

describe('peerNetworkConfig (the one place peers get their ICE settings)', () => {
  test('by default: an explicit empty ICE server list and nothing else', () => {
    assert.deepEqual(peerNetworkConfig(undefined), { iceServers: [] });
    assert.deepEqual(peerNetworkConfig({ announcedAddresses: [] }), { iceServers: [] });
  });
  test("announced addresses are added to werift's own gathering", () => {
    assert.deepEqual(peerNetworkConfig({ announcedAddresses: ['203.0.113.7'], portRange: [40000, 40100] }), {
      iceServers: [],
      iceAdditionalHostAddresses: ['203.0.113.7'],
      icePortRange: [40000, 40100],
    });
  });
  test("chosen interfaces replace werift's gathering, loopback included", () => {
    assert.deepEqual(peerNetworkConfig({ hostAddresses: ['127.0.0.1'], announcedAddresses: ['203.0.113.7'] }), {
      iceServers: [],
      iceUseIpv4: false,
      iceUseIpv6: false,
      iceAdditionalHostAddresses: ['203.0.113.7', '127.0.0.1'],
    });
  });
  test('socketsPerPeer counts one socket per distinct candidate address', () => {
    assert.equal(socketsPerPeer({ announcedAddresses: [] }, MACHINE), 3);
    assert.equal(socketsPerPeer({ announcedAddresses: ['10.0.0.5'], hostAddresses: ['10.0.0.5', '127.0.0.1'] }, MACHINE), 2);
  });
});

describe('peerIceNetwork (a server on a loopback --host offers loopback candidates)', () => {
  test('a loopback host with no --ice-interfaces gathers that address only', () => {
    assert.deepEqual(peerIceNetwork({ announcedAddresses: [] }, '127.0.0.1').hostAddresses, ['127.0.0.1']);
    assert.deepEqual(peerIceNetwork({ announcedAddresses: [] }, '[::1]').hostAddresses, ['::1']);
  });
  test('any other host, or chosen interfaces, keep the configured network', () => {
    assert.equal(peerIceNetwork({ announcedAddresses: [] }, '0.0.0.0').hostAddresses, undefined);
    assert.equal(peerIceNetwork({ announcedAddresses: [] }, '192.0.2.2').hostAddresses, undefined);
    assert.deepEqual(peerIceNetwork({ announcedAddresses: [], hostAddresses: ['10.0.0.5'] }, '127.0.0.1').hostAddresses, ['10.0.0.5']);
  });
});
