// A publisher peer that gets its own video back, unrestyled: its ingress's frames go straight into a
// VideoEgress on its return path. For tests of stream/ alone (no engine, no model), as the server
// would wire it (server/frame-pipeline.ts) minus the engine in between.
import type { VideoFrame } from '../../frame/video-frame.js';
import { VideoEgress } from '../../stream/egress.js';
import { createPublisherSession, type PublisherOptions, type PublisherSession } from '../../stream/publisher-session.js';

export interface EchoOptions extends Omit<PublisherOptions, 'onFrame'> {
  /** A frame's first packet went back to the publisher. */
  onSent?(frame: VideoFrame, firstPacketSentMs: number): void;
}

export async function createEchoPublisher(offerSdp: string, options: EchoOptions): Promise<PublisherSession> {
  let egress: VideoEgress | undefined;
  const publisher = await createPublisherSession(offerSdp, { ...options, onFrame: (frame) => egress?.send(frame) });
  if (publisher.returnPath) {
    egress = new VideoEgress({
      ...options.target,
      maxBitrateKbps: options.maxBitrateKbps,
      ...(options.onSent ? { onSent: options.onSent } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    egress.add(publisher.returnPath);
  }
  return {
    get answerSdp() {
      return publisher.answerSdp;
    },
    codec: publisher.codec,
    returnPath: publisher.returnPath,
    sendData: (text) => publisher.sendData(text),
    requestKeyframe: () => publisher.requestKeyframe(),
    stats: () => publisher.stats(),
    close: async () => {
      await publisher.close();
      await egress?.close();
    },
  };
}
