// The NAT test's client (tests/integration/nat.test.ts), run inside the client's network namespace: publishes a
// short pan clip to the server by WHIP with the shared werift client, counts the restyled frames that come back,
// and prints one JSON line with what happened. A connection that never comes up is a result, not a crash.
import { loadTestPhoto, makePanClip, publishLoopedClip } from '../../bench/loopback-client.js';
import type { ClientIce } from '../../bench/werift-client.js';
import { sdpCandidates } from './sdp-candidates.js';

export interface NatClientRequest {
  whipUrl: string;
  photo: string;
  /** How long to publish once connected. */
  seconds: number;
  connectTimeoutMs: number;
  ice?: ClientIce;
}

export interface NatClientResult {
  connected: boolean;
  framesSent: number;
  framesReceived: number;
  /** The address:port pairs of the server's candidates in its answer. */
  answerCandidates: string[];
  /** The types (host, relay, …) of the candidates the client offered. */
  offerCandidateTypes: string[];
  error?: string;
}

async function main(request: NatClientRequest): Promise<NatClientResult> {
  const clip = await makePanClip(await loadTestPhoto(request.photo), 320, 240, 30);
  let received = 0;
  try {
    const client = await publishLoopedClip(request.whipUrl, clip, {
      fps: 30,
      connectTimeoutMs: request.connectTimeoutMs,
      // In its namespace the client reaches the server through its own interface, not loopback.
      ice: { ...request.ice, gatherInterfaces: true },
      onOutputFrame: () => received++,
    });
    const answerCandidates = sdpCandidates(client.answerSdp).map((c) => `${c.address}:${c.port}`);
    const offerCandidateTypes = sdpCandidates(client.offerSdp).map((c) => c.type);
    await new Promise((r) => setTimeout(r, request.seconds * 1000));
    const { framesSent } = client.stats();
    await client.close();
    return { connected: true, framesSent, framesReceived: received, answerCandidates, offerCandidateTypes };
  } catch (error) {
    return {
      connected: false,
      framesSent: 0,
      framesReceived: received,
      answerCandidates: [],
      offerCandidateTypes: [],
      error: error instanceof Error ? error.message : String(error),
    };
  }
}

main(JSON.parse(process.argv[2] ?? '{}') as NatClientRequest).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (error: unknown) => {
    process.stderr.write(`nat-client: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
