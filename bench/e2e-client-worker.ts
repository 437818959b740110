// The benchmark's publishers, in a worker thread so their WebRTC and codec work does not land on the
// server's event loop (whose delay the benchmark reports). Each publisher is a real werift client
// sending a pre-encoded clip paced at a fixed rate; results go back to the main thread as messages.
import { parentPort, workerData } from 'node:worker_threads';
import { nowMs } from '../frame/clock.js';
import { createLoopbackClient, loadTestPhoto, makePanClip, type LoopbackClient } from './loopback-client.js';

export interface ClientWorkerInput {
  whipUrl: string;
  codec: 'VP8' | 'H264';
  fps: number;
  width: number;
  height: number;
  clipFrames: number;
  sessions: number;
  /** Session k starts k × joinAfterS seconds after the first (a load step); 0 = all at once. */
  joinAfterS: number;
  seconds: number;
}

export type ClientWorkerMessage =
  | { type: 'ready' }
  | { type: 'connected'; session: number; sessionId: string; startedMs: number; connectedMs: number }
  | { type: 'output'; session: number; rtpTimestamp: number; receivedMs: number }
  | { type: 'sent'; session: number; frames: Array<[rtpTimestamp: number, sentMs: number]> }
  | { type: 'progress'; elapsedS: number }
  | { type: 'error'; message: string }
  | { type: 'done' };

const input = workerData as ClientWorkerInput;
const post = (m: ClientWorkerMessage): void => parentPort!.postMessage(m);

async function main(): Promise<void> {
  const photo = await loadTestPhoto();
  const clip = await makePanClip(photo, input.width, input.height, input.clipFrames);
  post({ type: 'ready' });
  const clients: LoopbackClient[] = [];
  const startMs = nowMs();
  const starts = Array.from({ length: input.sessions }, async (_, session) => {
    await sleep(session * input.joinAfterS * 1000);
    const startedMs = nowMs();
    const client = await createLoopbackClient({
      whipUrl: input.whipUrl,
      codec: input.codec,
      fps: input.fps,
      frames: clip,
      width: input.width,
      height: input.height,
      loop: true,
      onOutputFrame: (rtpTimestamp, _rgb, receivedMs) => post({ type: 'output', session, rtpTimestamp, receivedMs }),
    });
    clients[session] = client;
    post({ type: 'connected', session, sessionId: new URL(client.location).pathname.split('/').pop()!, startedMs, connectedMs: nowMs() });
    return client;
  });
  const progress = setInterval(() => post({ type: 'progress', elapsedS: (nowMs() - startMs) / 1000 }), 500);
  await Promise.all(starts);
  await sleep(Math.max(0, startMs + input.seconds * 1000 - nowMs()));
  clearInterval(progress);
  for (const [session, client] of clients.entries()) {
    post({ type: 'sent', session, frames: [...client.sent.entries()].map(([ts, s]) => [ts, s.sentMs]) });
  }
  // Let the last frames come back before hanging up.
  await sleep(300);
  await Promise.all(clients.map((c) => c.close()));
  post({ type: 'done' });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

main().catch((error: unknown) => {
  post({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
});
