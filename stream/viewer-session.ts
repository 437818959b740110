// One WHEP viewer: answers its recvonly offer with a sendonly video (and audio) transceiver and is an
// RtpConsumer of its stream's egress — it never encodes; it only forwards the shared packets (werift rewrites
// SSRC, payload type and header extensions, and encrypts). Owns its peer connection and timers; close()
// frees them (PeerLifecycle). A viewer that vanishes (werift sends no close) is found by ICE state and RTCP silence.
import { RTCPeerConnection, useSdesMid, type RTCIceServer, type RtcpPacket, type RtpPacket, type RTCRtpTransceiver } from 'werift';
import { nowMs } from '../frame/clock.js';
import type { Log } from '../frame/log.js';
import type { RtpConsumer } from './egress.js';
import { NegotiationError } from './errors.js';
import { playoutDelayStamper, usePlayoutDelay } from './playout-delay.js';
import { opusParameters, videoCodecParameters } from './rtp-codecs.js';
import { PeerLifecycle } from './peer-lifecycle.js';
import { acquire, release } from './resource-counters.js';
import { isKeyframeRequest } from './rtcp-feedback.js';
import { acceptBundleOnly, chooseCodec, parseOffer } from './sdp-offer.js';
import type { VideoCodecName } from './video-codec.js';
import { iceGatheringComplete } from './ice-gathering.js';
import { peerNetworkConfig, type IceNetwork } from './ice-network.js';

export interface ViewerOptions {
  /** Codecs the server will encode for viewers, in order of preference; the first the viewer offers wins. */
  codecs: readonly VideoCodecName[];
  iceServers?: RTCIceServer[];
  /** Which addresses and ports ICE uses (--announce-address, --ice-interfaces, --udp-port-range); default: werift's. */
  network?: IceNetwork;
  /** Not connected (ICE + DTLS) this long after the answer: the viewer never came (default 15000). */
  connectTimeoutMs?: number;
  /** No RTCP from the viewer for this long while we send to it: it is gone (default 10000). */
  mediaTimeoutMs?: number;
  /** Ask the player to buffer at most this long (playout-delay extension); undefined: off. */
  playoutDelayMaxMs?: number;
  onClosed(reason: string): void;
  logger?: Log;
}

export interface ViewerStats {
  codec: VideoCodecName;
  connectionState: string;
  packetsOut: number;
  bytesOut: number;
  audioPacketsOut: number;
  keyframeRequestsReceived: number;
}

export interface ViewerSession extends RtpConsumer {
  readonly answerSdp: string;
  readonly codec: VideoCodecName;
  /** True when the viewer's offer has an audio m-line (it gets the publisher's Opus, if any). */
  readonly receivesAudio: boolean;
  sendAudio(rtp: RtpPacket): void;
  stats(): ViewerStats;
  close(): Promise<void>;
}

/** Answer a viewer's offer. Throws SdpError (400) / UnsupportedCodecError (415) / NegotiationError (400). */
export async function createViewerSession(offerSdp: string, options: ViewerOptions): Promise<ViewerSession> {
  const offer = parseOffer(offerSdp, 'viewer');
  const codec = chooseCodec(offer, options.codecs);
  const viewer = new Viewer(codec, options);
  try {
    await viewer.start(acceptBundleOnly(offerSdp));
  } catch (error) {
    await viewer.close();
    if (error instanceof Error && 'status' in error) throw error;
    throw new NegotiationError(error instanceof Error ? error.message : String(error));
  }
  return viewer;
}

class Viewer extends PeerLifecycle implements ViewerSession {
  answerSdp = '';
  receivesAudio = false;
  keyframeRequested?: () => void;
  private video: RTCRtpTransceiver | undefined;
  private audio: RTCRtpTransceiver | undefined;
  private readonly createdMs = nowMs();
  private connectedSinceMs: number | null = null;
  private lastRtcpMs = 0;
  private lastSentMs = 0;
  /** Adds the playout-delay extension (null: not negotiated or off; undefined: not decided yet). */
  private stamp: ((packet: RtpPacket) => RtpPacket) | null | undefined;
  private readonly counters = { packetsOut: 0, bytesOut: 0, audioPacketsOut: 0, keyframeRequestsReceived: 0 };

  constructor(
    readonly codec: VideoCodecName,
    private readonly options: ViewerOptions,
  ) {
    const rtcpFeedback = [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }];
    super(
      new RTCPeerConnection({
        // Explicit codecs (werift issue #511) and the H264 name in upper case (NOTES-webrtc.md).
        codecs: { video: [videoCodecParameters(codec, rtcpFeedback)], audio: [opusParameters()] },
        headerExtensions: { video: [useSdesMid(), usePlayoutDelay()], audio: [useSdesMid()] },
        ...peerNetworkConfig(options.network, options.iceServers),
      }),
      'viewer',
      (reason) => options.onClosed(reason),
      options.logger,
    );
    acquire('viewers');
  }

  async start(offerSdp: string): Promise<void> {
    await this.pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    this.video = this.pc.getTransceivers().find((t) => t.kind === 'video');
    if (!this.video) throw new NegotiationError('no video transceiver after applying the offer');
    this.video.setDirection('sendonly');
    this.audio = this.pc.getTransceivers().find((t) => t.kind === 'audio');
    this.audio?.setDirection('sendonly');
    this.receivesAudio = this.audio !== undefined;
    // PLI/FIR and receiver reports: read from the transport's raw RTCP (NOTES-webrtc.md); any RTCP proves life.
    this.sub(this.video.dtlsTransport.onRtcp.subscribe((rtcp) => this.onRtcp(rtcp)));
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    await iceGatheringComplete(this.pc);
    const sdp = this.pc.localDescription?.sdp;
    if (!sdp) throw new NegotiationError('no local description after ICE gathering');
    this.answerSdp = sdp;
    this.every(1000, () => this.checkLiveness());
    this.started = true;
  }

  sendPackets(packets: readonly RtpPacket[]): void {
    const sender = this.video?.sender;
    if (this.closed || !sender || this.connectedSinceMs === null) return;
    this.lastSentMs = nowMs();
    this.stamp ??= playoutDelayStamper(this.video!, this.options.playoutDelayMaxMs) ?? null;
    for (const packet of packets) {
      this.counters.packetsOut++;
      this.counters.bytesOut += packet.payload.length;
      void sender.sendRtp(this.stamp ? this.stamp(packet) : packet).catch(() => {});
    }
  }

  sendAudio(rtp: RtpPacket): void {
    const sender = this.audio?.sender;
    if (this.closed || !sender || this.connectedSinceMs === null) return;
    this.counters.audioPacketsOut++;
    void sender.sendRtp(rtp).catch(() => {});
  }

  private onRtcp(rtcp: RtcpPacket): void {
    this.lastRtcpMs = nowMs();
    if (!isKeyframeRequest(rtcp, this.video?.sender.ssrc)) return;
    this.counters.keyframeRequestsReceived++;
    this.keyframeRequested?.();
  }

  protected override connected(): void {
    // ICE connects before DTLS does, and werift drops RTP until DTLS is up: count the viewer as connected
    // (and ask for its first keyframe) only when the whole connection is.
    if (this.connectedSinceMs === null && this.pc.connectionState === 'connected') {
      this.connectedSinceMs = nowMs();
      this.lastRtcpMs = this.connectedSinceMs;
      // Packets sent before DTLS completed were dropped by werift: ask for a keyframe now that it can decode.
      this.keyframeRequested?.();
    }
  }

  private checkLiveness(): void {
    const now = nowMs();
    const timeout = this.options.mediaTimeoutMs ?? 10_000;
    if (this.connectedSinceMs === null) {
      const limit = this.options.connectTimeoutMs ?? 15_000;
      if (now - this.createdMs > limit) this.vanish(`viewer did not connect within ${limit / 1000} s`);
    } else if (this.disconnectedTooLong(now)) {
      return;
    } else if (now - this.lastSentMs < 2000 && now - this.lastRtcpMs > timeout) {
      // Only judged while media flows: a receiver reports on what it receives, and a stalled stream is not its fault.
      this.vanish(`no RTCP from the viewer for ${Math.round((now - this.lastRtcpMs) / 1000)} s`);
    }
  }

  stats(): ViewerStats {
    return { codec: this.codec, connectionState: this.pc.connectionState, ...this.counters };
  }

  protected async releaseOwn(): Promise<void> {
    release('viewers');
  }
}
