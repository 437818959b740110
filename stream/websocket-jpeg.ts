// The WebSocket fallback's two ends, for clients without WebRTC: JPEG frames in (binary messages,
// decoded and scaled to the model's size), restyled JPEG frames out, and control JSON as text messages
// both ways. JPEG work runs in sharp's (libuv) threads, off the main thread.
import sharp from 'sharp';
import type { WebSocket } from 'ws';
import { nowMs } from '../frame/clock.js';
import type { VideoFrame } from '../frame/video-frame.js';

/** Stop producing output for a client whose socket is this far behind; latest frame wins there too. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

export interface WebSocketIngressOptions {
  width: number;
  height: number;
  /** A decoded, scaled frame. */
  onFrame(frame: VideoFrame): void;
  /** A text message (control JSON). */
  onText(text: string): void;
  onClosed(reason: string): void;
}

/** A WebSocket client as a stream's publisher: its JPEG messages become frames; text goes both ways. */
export class WebSocketJpegIngress {
  readonly codec = 'jpeg';
  private seq = 0;
  private decodeErrors = 0;

  constructor(
    private readonly ws: WebSocket,
    private readonly options: WebSocketIngressOptions,
  ) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.decode(Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]));
      else options.onText(data.toString());
    });
    ws.once('close', () => options.onClosed('websocket closed'));
  }

  private decode(jpeg: Buffer): void {
    const { width, height } = this.options;
    const arrivalMs = nowMs();
    const frameSeq = this.seq++;
    sharp(jpeg, { failOn: 'error' })
      .resize(width, height, { fit: 'cover' })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true })
      .then(({ data: rgb, info }) => {
        if (info.channels !== 3) throw new Error(`expected RGB, got ${info.channels} channels`);
        this.options.onFrame({
          // A copy, not a view: the buffer is transferred to the inference worker and must own its memory.
          image: { width, height, data: new Uint8Array(rgb) },
          rtpTimestamp: (frameSeq * 3000) >>> 0,
          arrivalMs,
          seq: frameSeq,
          stages: [{ name: 'decode', startMs: arrivalMs, endMs: nowMs() }],
        });
      })
      .catch((error: Error) => {
        this.decodeErrors++;
        this.sendData(JSON.stringify({ type: 'error', message: `not a decodable JPEG frame: ${error.message}` }));
      });
  }

  sendData(text: string): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(text);
  }

  restyleFailed(error: Error): void {
    this.sendData(JSON.stringify({ type: 'error', message: `restyle failed: ${error.message}` }));
  }

  stats(): { framesIn: number; decodeErrors: number } {
    return { framesIn: this.seq, decodeErrors: this.decodeErrors };
  }

  async close(): Promise<void> {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(1000, 'session ended');
  }
}

/** Restyled frames as JPEG binary messages on the client's socket. */
export class WebSocketJpegEgress {
  private framesSent = 0;
  private framesSkipped = 0;
  private closed = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly events: { sent(frame: VideoFrame, sentMs: number): void },
    private readonly logger: { warn(o: object, msg?: string): void },
  ) {}

  send(frame: VideoFrame): void {
    const ws = this.ws;
    if (this.closed || ws.readyState !== ws.OPEN || ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.framesSkipped++;
      return;
    }
    const { data, width, height } = frame.image;
    sharp(data, { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 80 })
      .toBuffer()
      .then((jpeg) => {
        if (this.closed || ws.readyState !== ws.OPEN) return;
        ws.send(jpeg);
        this.framesSent++;
        this.events.sent(frame, nowMs());
      })
      .catch((error: Error) => this.logger.warn({ err: error.message }, 'jpeg encode failed'));
  }

  stats(): { framesSent: number; framesSkipped: number } {
    return { framesSent: this.framesSent, framesSkipped: this.framesSkipped };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
