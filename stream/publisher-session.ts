// One publisher's WebRTC peer: answers its offer, hands its video RTP to its ingress (stream/ingress.ts:
// depacketize → decode → scale), answers it with RTCP (PLI when the ingress needs a keyframe, REMB for its
// bitrate), and — for a browser's sendrecv offer — offers its transceiver as a return path that a
// VideoEgress sends restyled packets on. Owns its peer connection, ingress and timers; close() frees all
// of them (the lifecycle is PeerLifecycle's, shared with viewers).
import {
  RTCPeerConnection,
  useSdesMid,
  type MediaStreamTrack,
  type RTCDataChannel,
  type RTCIceServer,
  type RtcpPacket,
  type RtpPacket,
  type RTCRtpTransceiver,
} from 'werift';
import { nowMs } from '../frame/clock.js';
import type { Log } from '../frame/log.js';
import type { VideoFrame } from '../frame/video-frame.js';
import type { RtpConsumer } from './egress.js';
import { NegotiationError } from './errors.js';
import { VideoIngress, type VideoIngressStats } from './ingress.js';
import { PeerLifecycle } from './peer-lifecycle.js';
import { playoutDelayStamper, usePlayoutDelay } from './playout-delay.js';
import { opusParameters, videoCodecParameters } from './rtp-codecs.js';
import { acquire, release } from './resource-counters.js';
import { buildRemb, isKeyframeRequest } from './rtcp-feedback.js';
import { acceptBundleOnly, chooseCodec, parseOffer } from './sdp-offer.js';
import type { VideoCodecName } from './video-codec.js';
import { iceGatheringComplete } from './ice-gathering.js';
import { peerNetworkConfig, type IceNetwork } from './ice-network.js';

export interface PublisherOptions {
  /** Model resolution: input is cover-cropped and scaled to it; output frames must have it. */
  target: { width: number; height: number };
  /** Accepted video codecs in order of preference. */
  codecs: VideoCodecName[];
  maxBitrateKbps: number;
  iceServers?: RTCIceServer[];
  /** Which addresses and ports ICE uses (--announce-address, --ice-interfaces, --udp-port-range); default: werift's. */
  network?: IceNetwork;
  /** No RTP for this long ends the session (default 10000). */
  mediaTimeoutMs?: number;
  /** Bitrate to announce with REMB so the publisher ramps up quickly (default 2500). */
  announcedBitrateKbps?: number;
  /** Ask the browser to buffer the returned video at most this long (playout-delay extension); undefined: off. */
  playoutDelayMaxMs?: number;
  onFrame(frame: VideoFrame): void;
  /** Audio RTP from the publisher (Opus), for forwarding to viewers; dropped when absent. */
  onAudioRtp?(rtp: RtpPacket): void;
  onData(text: string): void;
  onClosed(reason: string): void;
  logger?: Log;
}

/** What the ingress counts, plus the publisher's own RTP out and RTCP feedback. */
export interface PublisherStats extends VideoIngressStats {
  codec: VideoCodecName;
  packetsOut: number;
  bytesOut: number;
  keyframeRequestsSent: number;
  keyframeRequestsReceived: number;
  /** REMB packets sent to the publisher (bandwidth announcements). */
  rembSent: number;
}

/** Before the first track arrives there is no ingress: every count is zero. */
const NO_INGRESS_YET: VideoIngressStats = {
  packetsIn: 0,
  bytesIn: 0,
  framesAssembled: 0,
  framesLost: 0,
  framesSkippedAwaitingKeyframe: 0,
  framesDecoded: 0,
  decodeErrors: 0,
  malformedPackets: 0,
  paddingPackets: 0,
  inputFps: 0,
};

export interface PublisherSession {
  readonly answerSdp: string;
  readonly codec: VideoCodecName;
  /** The sendrecv transceiver's sending side, for a VideoEgress; undefined for a sendonly (OBS) publisher. */
  readonly returnPath: RtpConsumer | undefined;
  sendData(text: string): void;
  requestKeyframe(): void;
  stats(): PublisherStats;
  close(): Promise<void>;
}

const PLI_MIN_INTERVAL_MS = 300;

/** What the publisher's video may ask of us: retransmission, keyframes, and REMB for its bitrate. */
const PUBLISHER_RTCP_FEEDBACK = [
  { type: 'nack' },
  { type: 'nack', parameter: 'pli' },
  { type: 'ccm', parameter: 'fir' },
  { type: 'goog-remb' },
];

/** Answer a publisher's offer. Throws SdpError / UnsupportedCodecError (with `status`) for unusable offers. */
export async function createPublisherSession(offerSdp: string, options: PublisherOptions): Promise<PublisherSession> {
  const offer = parseOffer(offerSdp);
  const codec = chooseCodec(offer, options.codecs);
  const session = new Publisher(codec, offer.videoDirection === 'sendrecv', options);
  try {
    await session.start(acceptBundleOnly(offerSdp));
  } catch (error) {
    await session.close();
    if (error instanceof Error && 'status' in error) throw error;
    throw new NegotiationError(error instanceof Error ? error.message : String(error));
  }
  return session;
}

class Publisher extends PeerLifecycle implements PublisherSession {
  answerSdp = '';
  private transceiver: RTCRtpTransceiver | undefined;
  private videoTrack: MediaStreamTrack | undefined;
  private dataChannel: RTCDataChannel | undefined;
  private ingress: VideoIngress | undefined;
  returnPath: RtpConsumer | undefined;
  private lastRtpMs = nowMs();
  private lastPliMs = 0;
  private readonly counters = { packetsOut: 0, bytesOut: 0, keyframeRequestsSent: 0, keyframeRequestsReceived: 0, rembSent: 0 };

  constructor(
    readonly codec: VideoCodecName,
    private readonly sendsBack: boolean,
    private readonly options: PublisherOptions,
  ) {
    super(
      new RTCPeerConnection({
        codecs: {
          video: [videoCodecParameters(codec, PUBLISHER_RTCP_FEEDBACK)],
          audio: [opusParameters()],
        },
        // No transport-cc: with werift's TWCC feedback Chromium's estimate stays low (NOTES-webrtc.md); REMB instead.
        headerExtensions: { video: [useSdesMid(), usePlayoutDelay()], audio: [useSdesMid()] },
        ...peerNetworkConfig(options.network, options.iceServers),
      }),
      'publisher',
      (reason) => options.onClosed(reason),
      options.logger,
    );
    acquire('sessions');
  }

  async start(offerSdp: string): Promise<void> {
    this.ingress = await VideoIngress.create({
      codec: this.codec,
      target: this.options.target,
      onFrame: (frame) => this.safe(() => this.options.onFrame(frame)),
      onKeyframeNeeded: (reason) => this.requestKeyframeLimited(reason),
      ...(this.log ? { log: this.log } : {}),
    });

    // onTrack fires inside setRemoteDescription: subscribe first (NOTES-webrtc.md).
    this.sub(this.pc.onTrack.subscribe((track) => this.onTrack(track)));
    this.sub(
      this.pc.onDataChannel.subscribe((dc) => {
        this.dataChannel = dc;
        this.sub(
          dc.onMessage.subscribe((msg) => this.safe(() => this.options.onData(typeof msg === 'string' ? msg : msg.toString('utf8')))),
        );
      }),
    );

    await this.pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    this.transceiver = this.pc.getTransceivers().find((t) => t.kind === 'video');
    if (!this.transceiver) throw new NegotiationError('no video transceiver after applying the offer');
    this.transceiver.setDirection(this.sendsBack ? 'sendrecv' : 'recvonly');
    for (const t of this.pc.getTransceivers()) if (t.kind === 'audio') t.setDirection('recvonly');
    // Browsers ask for keyframes on the sendrecv transceiver's feedback, which werift routes to its receiver:
    // read PLI/FIR from the raw RTCP instead (NOTES-webrtc.md).
    this.sub(this.transceiver.dtlsTransport.onRtcp.subscribe((rtcp) => this.onRtcp(rtcp)));

    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    await iceGatheringComplete(this.pc);
    const sdp = this.pc.localDescription?.sdp;
    if (!sdp) throw new NegotiationError('no local description after ICE gathering');
    this.answerSdp = sdp;
    if (!this.videoTrack) this.videoTrack = this.transceiver.receiver.tracks[0];
    if (this.sendsBack) this.returnPath = this.makeReturnPath(this.transceiver);

    this.every(1000, () => this.checkLiveness());
    this.every(1000, () => this.sendRemb());
    this.started = true;
  }

  // ---- ingress -------------------------------------------------------------------------------------------

  private onTrack(track: MediaStreamTrack): void {
    if (track.kind !== 'video') {
      // Audio: forwarded to the owner (viewers), or dropped; either way it proves the publisher is alive.
      this.sub(
        track.onReceiveRtp.subscribe((rtp) => {
          this.lastRtpMs = nowMs();
          if (this.options.onAudioRtp) this.safe(() => this.options.onAudioRtp!(rtp));
        }),
      );
      return;
    }
    this.videoTrack = track;
    this.sub(track.onReceiveRtp.subscribe((rtp) => this.onVideoRtp(rtp)));
  }

  private onVideoRtp(rtp: RtpPacket): void {
    const arrival = nowMs();
    this.lastRtpMs = arrival;
    this.ingress?.push(rtp, arrival);
  }

  // ---- egress --------------------------------------------------------------------------------------------

  /** Sends shared packets on the sendrecv transceiver; werift clones each before rewriting SSRC/PT/seq. */
  private makeReturnPath(transceiver: RTCRtpTransceiver): RtpConsumer {
    const counters = this.counters;
    const isClosed = (): boolean => this.closed;
    const stamp = playoutDelayStamper(transceiver, this.options.playoutDelayMaxMs);
    return {
      codec: this.codec,
      sendPackets(packets) {
        if (isClosed()) return;
        for (const packet of packets) {
          counters.packetsOut++;
          counters.bytesOut += packet.payload.length;
          void transceiver.sender.sendRtp(stamp ? stamp(packet as RtpPacket) : (packet as RtpPacket)).catch(() => {});
        }
      },
    };
  }

  private onRtcp(rtcp: RtcpPacket): void {
    if (!isKeyframeRequest(rtcp, this.transceiver?.sender.ssrc)) return;
    this.counters.keyframeRequestsReceived++;
    this.returnPath?.keyframeRequested?.();
  }

  // ---- control -------------------------------------------------------------------------------------------

  sendData(text: string): void {
    const dc = this.dataChannel;
    if (this.closed || !dc || dc.readyState !== 'open') return;
    try {
      dc.send(text);
    } catch {
      // The channel closed between the check and the send; stats are best-effort.
    }
  }

  requestKeyframe(): void {
    const ssrc = this.videoTrack?.ssrc;
    const receiver = this.transceiver?.receiver;
    if (this.closed || ssrc === undefined || !receiver) return;
    this.lastPliMs = nowMs();
    this.counters.keyframeRequestsSent++;
    void receiver.sendRtcpPLI(ssrc).catch(() => {});
  }

  private requestKeyframeLimited(reason: string): void {
    if (nowMs() - this.lastPliMs < PLI_MIN_INTERVAL_MS) return;
    // The repeats while a keyframe is awaited come up to every PLI_MIN_INTERVAL_MS: counted in stats, not logged.
    if (reason !== 'still awaiting a keyframe') this.log?.info({ reason }, 'requesting keyframe');
    this.requestKeyframe();
  }

  private sendRemb(): void {
    const ssrc = this.videoTrack?.ssrc;
    const transport = this.transceiver?.dtlsTransport;
    if (this.closed || ssrc === undefined || !transport || this.pc.connectionState !== 'connected') return;
    const remb = buildRemb(this.transceiver!.sender.ssrc, [ssrc], (this.options.announcedBitrateKbps ?? 2500) * 1000);
    this.counters.rembSent++;
    void transport.sendRtcp([remb]).catch(() => {});
  }

  stats(): PublisherStats {
    return { codec: this.codec, ...(this.ingress?.stats() ?? NO_INGRESS_YET), ...this.counters };
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------

  private checkLiveness(): void {
    const now = nowMs();
    if (this.disconnectedTooLong(now)) return;
    if (now - this.lastRtpMs > (this.options.mediaTimeoutMs ?? 10000))
      this.vanish(`no media for ${Math.round((now - this.lastRtpMs) / 1000)} s`);
  }

  protected async releaseOwn(): Promise<void> {
    await this.ingress?.close();
    release('sessions');
  }
}
