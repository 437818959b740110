// The soak test's peers, in a worker thread (as in `bench e2e`) so their WebRTC and codec work — and their
// own codec contexts — stay off the server's event loop and out of its resource counters. Each publisher is a
// real werift loopback client looping a pre-encoded clip; each viewer is a bare werift WHEP peer that counts
// the packets it receives. The main thread posts 'stop'; the worker hangs everything up and posts 'done'.
import { parentPort, workerData } from 'node:worker_threads';
import { createLoopbackClient, loadTestPhoto, makePanClip, type LoopbackClient } from './loopback-client.js';
import { startWhepViewer, type WhepViewer } from './whep-viewer.js';

export interface SoakClientInput {
  baseUrl: string;
  codec: 'VP8' | 'H264';
  fps: number;
  width: number;
  height: number;
  clipFrames: number;
  sessions: number;
  viewersPerSession: number;
  /** How often to report counts to the main thread. */
  reportMs: number;
}

export type SoakClientMessage =
  | { type: 'connected'; session: number; sessionId: string }
  | { type: 'counts'; outputFrames: number; viewerPackets: number; viewers: number }
  | { type: 'error'; message: string }
  | { type: 'done' };

const input = workerData as SoakClientInput;
const post = (m: SoakClientMessage): void => parentPort!.postMessage(m);

/** Viewers only count packets: decoding them all would load the machine the server runs on. */
function startViewer(whepUrl: string, codec: 'VP8' | 'H264'): Promise<WhepViewer> {
  return startWhepViewer({ whepUrl, codec, decode: false });
}

async function main(): Promise<void> {
  const clip = await makePanClip(await loadTestPhoto(), input.width, input.height, input.clipFrames);
  const clients: LoopbackClient[] = [];
  const viewers: WhepViewer[] = [];
  let outputFrames = 0;
  let stopping = false;
  const stopped = new Promise<void>((resolve) =>
    parentPort!.on('message', (m: { type: string }) => {
      if (m.type === 'stop') {
        stopping = true;
        resolve();
      }
    }),
  );
  for (let session = 0; session < input.sessions && !stopping; session++) {
    const client = await createLoopbackClient({
      whipUrl: `${input.baseUrl}/whip`,
      codec: input.codec,
      fps: input.fps,
      frames: clip,
      width: input.width,
      height: input.height,
      loop: true,
      onOutputFrame: () => outputFrames++,
    });
    clients.push(client);
    const sessionId = new URL(client.location).pathname.split('/').pop()!;
    post({ type: 'connected', session, sessionId });
    // A plain /whip publisher's stream name is its session id.
    for (let v = 0; v < input.viewersPerSession && !stopping; v++)
      viewers.push(await startViewer(`${input.baseUrl}/whep/${sessionId}`, input.codec));
  }
  const report = (): void =>
    post({ type: 'counts', outputFrames, viewerPackets: viewers.reduce((n, v) => n + v.stats().packets, 0), viewers: viewers.length });
  const timer = setInterval(report, input.reportMs);
  await stopped;
  clearInterval(timer);
  report();
  await Promise.all([...viewers.map((v) => v.close()), ...clients.map((c) => c.close())]);
  post({ type: 'done' });
}

main().catch((error: unknown) => {
  post({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
});
