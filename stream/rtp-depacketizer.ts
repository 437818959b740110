// RTP → access units for VP8 (RFC 7741) and H.264 (RFC 6184, packetization-mode 1), with a jitter allowance of
// one frame: a frame is emitted as soon as its packets are contiguous up to the marker bit; an older frame still
// incomplete when a newer one completes is declared lost. After a loss, inter frames are dropped until the next
// keyframe (the owner sends PLI). Padding-only packets (bandwidth probes) fill sequence gaps and are not loss.
// Malformed payloads never throw: they count as loss.

export type DepacketizerCodec = 'VP8' | 'H264';

export interface RtpPacketView {
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  /** Payload without RTP header and padding. Empty for padding-only packets. */
  payload: Buffer;
}

export interface AssembledFrame {
  /** VP8: the frame; H.264: Annex-B access unit (start codes before each NAL). */
  data: Buffer;
  keyframe: boolean;
  rtpTimestamp: number;
  firstPacketMs: number;
  lastPacketMs: number;
}

export interface DepacketizerStats {
  packets: number;
  paddingPackets: number;
  malformedPackets: number;
  latePackets: number;
  /** Times the stream's sequence numbers or timestamps jumped far and reception started over (RFC 3550 A.1). */
  resyncs: number;
  framesAssembled: number;
  /** Frames dropped because a packet was missing or malformed. */
  framesLost: number;
  /** Frames dropped while waiting for a keyframe after a loss. */
  framesSkippedAwaitingKeyframe: number;
}

/** Why a keyframe is needed: a loss, a malformed frame, a resync, or a frame skipped while one is still awaited. */
export type LossReason = 'loss' | 'malformed' | 'resync' | 'still awaiting a keyframe';

interface PayloadInfo {
  /** True when this packet starts a frame (VP8: S=1 and PID=0; H.264: not a FU-A continuation). */
  frameStart: boolean;
  keyframe: boolean;
  /** Bytes this packet contributes to the access unit. */
  chunk: Buffer;
}

interface Pending {
  timestamp: number;
  packets: Map<number, { info: PayloadInfo | null; marker: boolean; arrivalMs: number }>;
  firstMs: number;
}

const ANNEX_B = Buffer.from([0, 0, 0, 1]);
/** Frames waiting for missing packets before the oldest is given up even without a newer complete one. */
const MAX_PENDING_FRAMES = 8;
/**
 * A packet further behind than this (sequence numbers, or 10 s of 90 kHz timestamps) is not reordering but a
 * jump. RESYNC_SEQUENTIAL such packets in sequence mean the source really jumped — a restarted sender, or one
 * stray packet far ahead that made every later one look late — and reception starts over from them, as
 * RFC 3550 A.1 does; without this, one such packet froze the stream until its numbers caught up.
 */
const MAX_MISORDER = 100;
const MAX_TS_BEHIND = 90_000 * 10;
const RESYNC_SEQUENTIAL = 3;

const seqNewer = (a: number, b: number): boolean => a !== b && ((a - b) & 0xffff) < 0x8000;
const tsNewer = (a: number, b: number): boolean => a !== b && (a - b) >>> 0 < 0x80000000;

/** Parse a VP8 RTP payload descriptor. Returns null for a malformed payload. */
export function parseVp8Payload(buf: Buffer): PayloadInfo | null {
  if (buf.length < 1) return null;
  let i = 0;
  const b0 = buf[i++]!;
  const x = (b0 & 0x80) !== 0;
  const s = (b0 & 0x10) !== 0;
  const pid = b0 & 0x07;
  if (x) {
    if (i >= buf.length) return null;
    const b1 = buf[i++]!;
    if (b1 & 0x80) {
      if (i >= buf.length) return null;
      i += buf[i]! & 0x80 ? 2 : 1; // I: 7- or 15-bit PictureID
    }
    if (b1 & 0x40) i++; // L: TL0PICIDX
    if (b1 & 0x30) i++; // T or K: TID/Y/KEYIDX
  }
  if (i >= buf.length) return null;
  const chunk = buf.subarray(i);
  const frameStart = s && pid === 0;
  // VP8 frame tag: bit 0 of the first byte is the inverse keyframe flag.
  const keyframe = frameStart && (chunk[0]! & 0x01) === 0;
  return { frameStart, keyframe, chunk };
}

/** Parse an H.264 RTP payload (single NAL, STAP-A, FU-A) into Annex-B bytes. Returns null when malformed. */
export function parseH264Payload(buf: Buffer): PayloadInfo | null {
  if (buf.length < 1) return null;
  const header = buf[0]!;
  if (header & 0x80) return null; // forbidden_zero_bit
  const type = header & 0x1f;
  if (type >= 1 && type <= 23) {
    return { frameStart: true, keyframe: type === 5, chunk: Buffer.concat([ANNEX_B, buf]) };
  }
  if (type === 24) {
    const parts: Buffer[] = [];
    let keyframe = false;
    let i = 1;
    while (i < buf.length) {
      if (i + 2 > buf.length) return null;
      const size = buf.readUInt16BE(i);
      i += 2;
      if (size === 0 || i + size > buf.length) return null;
      const nal = buf.subarray(i, i + size);
      if ((nal[0]! & 0x1f) === 5) keyframe = true;
      parts.push(ANNEX_B, nal);
      i += size;
    }
    if (parts.length === 0) return null;
    return { frameStart: true, keyframe, chunk: Buffer.concat(parts) };
  }
  if (type === 28) {
    if (buf.length < 3) return null;
    const fu = buf[1]!;
    const start = (fu & 0x80) !== 0;
    const nalType = fu & 0x1f;
    const body = buf.subarray(2);
    if (start) {
      const nalHeader = Buffer.from([(header & 0xe0) | nalType]);
      return { frameStart: true, keyframe: nalType === 5, chunk: Buffer.concat([ANNEX_B, nalHeader, body]) };
    }
    return { frameStart: false, keyframe: false, chunk: body };
  }
  return null; // STAP-B, MTAP, FU-B: not in packetization-mode 1
}

/**
 * Reassembles one SSRC's RTP packets into frames. `push` returns the frames completed by this packet (0..2) and
 * reports losses through `onLoss` so the owner can request a keyframe.
 */
export class FrameAssembler {
  readonly stats: DepacketizerStats = {
    packets: 0,
    paddingPackets: 0,
    malformedPackets: 0,
    latePackets: 0,
    resyncs: 0,
    framesAssembled: 0,
    framesLost: 0,
    framesSkippedAwaitingKeyframe: 0,
  };
  /** Sequence number of the last packet accounted for (emitted frame, dropped frame or padding). */
  private lastSeq: number | null = null;
  private lastTimestamp: number | null = null;
  private pending: Pending[] = [];
  private readonly paddingSeqs = new Set<number>();
  private awaitingKeyframe = true;
  /** Far-behind packets seen in sequence so far, and the sequence number that would continue them. */
  private jump: { count: number; nextSeq: number } | null = null;
  private readonly parse: (buf: Buffer) => PayloadInfo | null;

  constructor(
    codec: DepacketizerCodec,
    private readonly onLoss: (reason: LossReason) => void = () => {},
  ) {
    this.parse = codec === 'VP8' ? parseVp8Payload : parseH264Payload;
  }

  push(packet: RtpPacketView, arrivalMs: number): AssembledFrame[] {
    try {
      return this.pushUnsafe(packet, arrivalMs);
    } catch {
      // Defensive: nothing in here should throw, but a hostile packet must never break the session.
      this.stats.malformedPackets++;
      return [];
    }
  }

  private pushUnsafe(packet: RtpPacketView, arrivalMs: number): AssembledFrame[] {
    this.stats.packets++;
    const seq = packet.sequenceNumber & 0xffff;
    const seqLate = this.lastSeq !== null && !seqNewer(seq, this.lastSeq);
    const tsLate = this.lastTimestamp !== null && packet.payload.length > 0 && !tsNewer(packet.timestamp, this.lastTimestamp);
    if (seqLate || tsLate) {
      const farBehind =
        (seqLate && ((this.lastSeq! - seq) & 0xffff) > MAX_MISORDER) ||
        (tsLate && (this.lastTimestamp! - packet.timestamp) >>> 0 > MAX_TS_BEHIND);
      if (!farBehind || !this.jumpConfirmed(seq)) {
        this.stats.latePackets++; // retransmission or reordering beyond our one-frame allowance
        return [];
      }
      // The source jumped: forget the old numbering and wait for a keyframe in the new one.
      this.stats.resyncs++;
      this.lastSeq = null;
      this.lastTimestamp = null;
      this.stats.framesLost += this.pending.length;
      this.pending = [];
      this.paddingSeqs.clear();
      this.noteLoss('resync');
    } else {
      this.jump = null;
    }
    if (packet.payload.length === 0) {
      this.stats.paddingPackets++;
      this.paddingSeqs.add(seq);
      if (this.paddingSeqs.size > 256) this.paddingSeqs.delete(this.paddingSeqs.values().next().value!);
      return this.drain();
    }
    const info = this.parse(packet.payload);
    if (!info) this.stats.malformedPackets++;
    let frame = this.pending.find((p) => p.timestamp === packet.timestamp);
    if (!frame) {
      frame = { timestamp: packet.timestamp, packets: new Map(), firstMs: arrivalMs };
      this.pending.push(frame);
      this.pending.sort((a, b) => (tsNewer(a.timestamp, b.timestamp) ? 1 : -1));
    }
    frame.packets.set(seq, { info, marker: packet.marker, arrivalMs });
    return this.drain();
  }

  /**
   * Emit every frame that is complete in order. When a newer frame is complete on its own while an older one
   * is not (or follows a gap), the jitter allowance is spent: older incomplete frames are lost.
   */
  private drain(): AssembledFrame[] {
    const out: AssembledFrame[] = [];
    while (this.pending.length > 0) {
      const inOrder = this.span(this.pending[0]!, true);
      if (inOrder) {
        const emitted = this.finish(this.pending.shift()!, inOrder);
        if (emitted) out.push(emitted);
        continue;
      }
      let idx = -1;
      for (let i = 1; i < this.pending.length && idx < 0; i++) if (this.span(this.pending[i]!, false)) idx = i;
      if (idx < 0 && this.pending.length <= MAX_PENDING_FRAMES) break;
      if (idx < 0) idx = 0; // too many stalled frames: give up on the oldest
      let lossNoted = false; // one loss event (one keyframe request) per gap, however many frames it spans
      for (let j = 0; j <= idx; j++) {
        const frame = this.pending.shift()!;
        const span = this.span(frame, false);
        if (!span) {
          this.dropFrame(frame, lossNoted ? null : 'loss');
          lossNoted = true;
          continue;
        }
        if (!lossNoted && this.lastSeq !== null && !this.gapIsPadding(this.lastSeq, span.first)) {
          this.noteLoss('loss');
          lossNoted = true;
        }
        const emitted = this.finish(frame, span);
        if (emitted) out.push(emitted);
      }
    }
    return out;
  }

  /**
   * [first, last] sequence numbers when the frame holds a contiguous run ending at its marker packet that
   * starts a frame (`inOrder`: that directly follows the previous frame, padding aside).
   */
  private span(frame: Pending, inOrder: boolean): { first: number; last: number; malformed: boolean } | null {
    let markerSeq: number | null = null;
    for (const [seq, p] of frame.packets) if (p.marker) markerSeq = seq;
    if (markerSeq === null) return null;
    let seq = markerSeq;
    let malformed = false;
    for (let n = 0; n < frame.packets.size; n++) {
      const p = frame.packets.get(seq)!;
      if (!p.info) malformed = true;
      const prev = (seq - 1) & 0xffff;
      if (!frame.packets.has(prev)) {
        const starts = p.info?.frameStart === true || (p.info === null && malformed);
        if (inOrder && this.lastSeq !== null)
          return this.gapIsPadding(this.lastSeq, seq) ? { first: seq, last: markerSeq, malformed } : null;
        return starts ? { first: seq, last: markerSeq, malformed } : null;
      }
      seq = prev;
    }
    return null;
  }

  /** Counts a far-behind packet; true once RESYNC_SEQUENTIAL of them have come in sequence. */
  private jumpConfirmed(seq: number): boolean {
    this.jump =
      this.jump && this.jump.nextSeq === seq
        ? { count: this.jump.count + 1, nextSeq: (seq + 1) & 0xffff }
        : { count: 1, nextSeq: (seq + 1) & 0xffff };
    if (this.jump.count < RESYNC_SEQUENTIAL) return false;
    this.jump = null;
    return true;
  }

  private gapIsPadding(from: number, to: number): boolean {
    for (let s = (from + 1) & 0xffff; s !== to; s = (s + 1) & 0xffff) {
      if (!this.paddingSeqs.has(s)) return false;
    }
    return true;
  }

  private finish(frame: Pending, span: { first: number; last: number; malformed: boolean }): AssembledFrame | null {
    this.lastSeq = span.last;
    this.lastTimestamp = frame.timestamp;
    if (span.malformed) {
      this.stats.framesLost++;
      this.noteLoss('malformed');
      return null;
    }
    const chunks: Buffer[] = [];
    let keyframe = false;
    let lastMs = frame.firstMs;
    for (let s = span.first; ; s = (s + 1) & 0xffff) {
      const p = frame.packets.get(s)!;
      chunks.push(p.info!.chunk);
      keyframe ||= p.info!.keyframe;
      lastMs = Math.max(lastMs, p.arrivalMs);
      if (s === span.last) break;
    }
    if (this.awaitingKeyframe && !keyframe) {
      this.stats.framesSkippedAwaitingKeyframe++;
      // Ask again for every frame skipped (the owner rate-limits): a PLI that was lost or ignored must not freeze
      // the stream, and browsers send no periodic keyframes to end the wait.
      this.onLoss('still awaiting a keyframe');
      return null;
    }
    this.awaitingKeyframe = false;
    this.stats.framesAssembled++;
    return { data: Buffer.concat(chunks), keyframe, rtpTimestamp: frame.timestamp, firstPacketMs: frame.firstMs, lastPacketMs: lastMs };
  }

  private dropFrame(frame: Pending, reason: LossReason | null): void {
    let maxSeq: number | null = null;
    for (const seq of frame.packets.keys()) if (maxSeq === null || seqNewer(seq, maxSeq)) maxSeq = seq;
    if (maxSeq !== null && (this.lastSeq === null || seqNewer(maxSeq, this.lastSeq))) this.lastSeq = maxSeq;
    this.lastTimestamp = frame.timestamp;
    this.stats.framesLost++;
    if (reason) this.noteLoss(reason);
    else this.awaitingKeyframe = true;
  }

  private noteLoss(reason: LossReason): void {
    this.awaitingKeyframe = true;
    this.onLoss(reason);
  }

  /** The decoder failed on our output: wait for a keyframe before emitting more. */
  requireKeyframe(): void {
    this.awaitingKeyframe = true;
  }
}
