// Where a server-side peer connection's ICE candidates come from: the local addresses it gathers, the
// addresses it announces besides (1:1 NAT, published container ports) and the UDP ports it may bind.
// Publishers and WHEP viewers, on a standalone server or a cluster worker, all take their werift settings
// from peerNetworkConfig, so the two kinds of peer cannot drift apart.
import type { RTCIceServer, RTCPeerConnectionConfig } from 'werift';

export interface IceNetwork {
  /**
   * Addresses gathered as host candidates (loopback allowed); undefined = werift's default, every
   * non-loopback, non-link-local address of every interface except veth/tun/tap-like ones.
   */
  hostAddresses?: readonly string[];
  /** Addresses announced as further host candidates, each with the port of its own local socket. */
  announcedAddresses: readonly string[];
  /** Inclusive [min, max] UDP port range for every socket a peer binds; undefined = any free port. */
  portRange?: readonly [number, number];
}

/** The ICE part of a server-side RTCPeerConnection's configuration. */
export function peerNetworkConfig(network: IceNetwork | undefined, iceServers: RTCIceServer[] = []): RTCPeerConnectionConfig {
  // Always an explicit list: werift's default has a public STUN server, and the server must contact only
  // what it was told to (NOTES-webrtc.md).
  const config: RTCPeerConnectionConfig = { iceServers };
  if (!network) return config;
  const chosen = network.hostAddresses;
  // werift gathers its own interface list unless told not to; a chosen list (which may hold loopback, which
  // werift never gathers) is handed over as "additional" addresses with werift's own gathering turned off.
  if (chosen) {
    config.iceUseIpv4 = false;
    config.iceUseIpv6 = false;
  }
  const extra = [...new Set([...network.announcedAddresses, ...(chosen ?? [])])];
  if (extra.length) config.iceAdditionalHostAddresses = extra;
  if (network.portRange) config.icePortRange = [network.portRange[0], network.portRange[1]];
  return config;
}
