// The sender's encoded transform (RTCRtpScriptTransform runs it in this worker): passes every encoded
// frame through unchanged and tells the page its RTP timestamp and when it left the encoder. Times are
// epoch ms (timeOrigin + now): a worker's performance.now() has its own origin.

interface EncodedFrame {
  timestamp?: number;
  getMetadata(): { rtpTimestamp?: number };
}
interface TransformEvent {
  transformer: { readable: ReadableStream<EncodedFrame>; writable: WritableStream<EncodedFrame> };
}
interface WorkerScope {
  onrtctransform: ((event: TransformEvent) => void) | null;
  postMessage(message: unknown): void;
}

const scope = globalThis as unknown as WorkerScope;

scope.onrtctransform = (event) => {
  const { readable, writable } = event.transformer;
  readable
    .pipeThrough(
      new TransformStream<EncodedFrame, EncodedFrame>({
        transform(frame, controller) {
          const sentMs = performance.timeOrigin + performance.now();
          const rtp = frame.getMetadata().rtpTimestamp ?? frame.timestamp;
          controller.enqueue(frame);
          if (rtp !== undefined) scope.postMessage([rtp, sentMs]);
        },
      }),
    )
    .pipeTo(writable)
    .catch(() => {
      // the sender was closed
    });
};
