// The ICE candidates an SDP carries, for the tests that check which addresses a peer offers or answers with.

export interface SdpCandidate {
  address: string;
  port: number;
  /** host, srflx, relay, … */
  type: string;
}

/** Address, port and type of each `a=candidate` line. */
export function sdpCandidates(sdp: string): SdpCandidate[] {
  return [...sdp.matchAll(/^a=candidate:\S+ \d+ (\S+) \d+ (\S+) (\d+) typ (\S+)/gm)].map((m) => ({
    address: m[2]!,
    port: Number(m[3]),
    type: m[4]!,
  }));
}
