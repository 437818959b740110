// One WHIP session: a single RTCPeerConnection with a sendrecv video transceiver (camera out,
// restyled video back on the same m-line) and the `control` DataChannel, created before the offer.

import { deleteResource, negotiate } from './signaling.js';

export type ConnectionHealth = 'connecting' | 'connected' | 'interrupted' | 'lost';

export interface PublisherEvents {
  onOutput(stream: MediaStream): void;
  onHealth(health: ConnectionHealth): void;
  /** The camera's sender, before negotiation (to attach an encoded transform that sees the first frame). */
  onSender?(sender: RTCRtpSender): void;
}

/** Chromium declares a peer gone after ICE consent fails; give a `disconnected` blip this long to recover. */
const INTERRUPTION_GRACE_MS = 5000;

export class Publisher {
  readonly channel: RTCDataChannel;
  private closed = false;
  private interruptedTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    readonly pc: RTCPeerConnection,
    readonly transceiver: RTCRtpTransceiver,
    private readonly events: PublisherEvents,
    public resourceUrl = '',
  ) {
    this.channel = pc.createDataChannel('control', { ordered: true });
    pc.addEventListener('track', (e) => {
      events.onOutput(e.streams[0] ?? new MediaStream([e.track]));
    });
    pc.addEventListener('connectionstatechange', () => this.onConnectionState());
    this.channel.addEventListener('close', () => {
      if (!this.closed && pc.connectionState === 'connected') this.report('lost');
    });
  }

  static async start(endpoint: string, camera: MediaStreamTrack, events: PublisherEvents): Promise<Publisher> {
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    const transceiver = pc.addTransceiver(camera, { direction: 'sendrecv' });
    preferCodecs(transceiver, ['video/VP8', 'video/H264']);
    events.onSender?.(transceiver.sender);
    const publisher = new Publisher(pc, transceiver, events);
    try {
      const session = await negotiate(pc, endpoint);
      publisher.resourceUrl = session.resourceUrl;
    } catch (err) {
      publisher.closed = true;
      pc.close();
      throw err;
    }
    return publisher;
  }

  /** Ends the session locally and on the server. On page unload pass keepalive so the DELETE is still sent. */
  close(options: { keepalive?: boolean } = {}): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    clearTimeout(this.interruptedTimer);
    this.channel.close();
    this.pc.close();
    return this.resourceUrl ? deleteResource(this.resourceUrl, options.keepalive) : Promise.resolve();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private onConnectionState(): void {
    if (this.closed) return;
    clearTimeout(this.interruptedTimer);
    switch (this.pc.connectionState) {
      case 'connected':
        this.report('connected');
        break;
      case 'disconnected':
        this.report('interrupted');
        this.interruptedTimer = setTimeout(() => this.report('lost'), INTERRUPTION_GRACE_MS);
        break;
      case 'failed':
      case 'closed':
        this.report('lost');
        break;
      default:
        this.report('connecting');
    }
  }

  private report(health: ConnectionHealth): void {
    if (!this.closed) this.events.onHealth(health);
  }
}

/** Orders codecs by preference, keeping every other codec (RTX, H.264 profiles, …) after them. */
export function preferCodecs(transceiver: RTCRtpTransceiver, mimeTypes: string[]): void {
  const capabilities = RTCRtpReceiver.getCapabilities('video');
  if (!capabilities || typeof transceiver.setCodecPreferences !== 'function') return;
  const rank = (c: RTCRtpCodec): number => {
    const i = mimeTypes.findIndex((m) => m.toLowerCase() === c.mimeType.toLowerCase());
    return i === -1 ? mimeTypes.length : i;
  };
  const codecs = [...capabilities.codecs].sort((a, b) => rank(a) - rank(b));
  try {
    transceiver.setCodecPreferences(codecs);
  } catch {
    // Some browsers reject certain capability lists; their default order still includes VP8 and H.264.
  }
}
