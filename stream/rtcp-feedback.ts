// The RTCP this server writes and reads itself: REMB (tell the publisher how fast it may send) and keyframe
// requests (PLI/FIR) from the peer, read from the transport's raw RTCP because on a sendrecv transceiver
// werift routes them to its receiver, not to the sender that must answer them (NOTES-webrtc.md).
import { PictureLossIndication, ReceiverEstimatedMaxBitrate, RtcpPayloadSpecificFeedback, type RtcpPacket } from 'werift';

/** A REMB packet announcing `bitrateBps` for the given media SSRCs (RFC draft-alvestrand-rmcat-remb). */
export function buildRemb(senderSsrc: number, mediaSsrcs: number[], bitrateBps: number): RtcpPayloadSpecificFeedback {
  let mantissa = Math.max(0, Math.floor(bitrateBps));
  let exp = 0;
  while (mantissa >= 1 << 18) {
    mantissa = Math.floor(mantissa / 2);
    exp++;
  }
  // werift serializes brExp/brMantissa/ssrcNum as given; it does not derive them from `bitrate`.
  const remb = new ReceiverEstimatedMaxBitrate({
    senderSsrc,
    mediaSsrc: 0,
    brExp: exp,
    brMantissa: mantissa,
    bitrate: BigInt(mantissa) << BigInt(exp),
    ssrcNum: mediaSsrcs.length,
    ssrcFeedbacks: mediaSsrcs,
  });
  return new RtcpPayloadSpecificFeedback({ feedback: remb });
}

/**
 * True when `rtcp` asks for a keyframe of the stream we send (`ourSsrc`): PLI (FMT 1) or FIR (FMT 4; its
 * class is not exported by werift, and its media SSRC field is 0 by definition).
 */
export function isKeyframeRequest(rtcp: RtcpPacket, ourSsrc: number | undefined): boolean {
  if (!(rtcp instanceof RtcpPayloadSpecificFeedback)) return false;
  const fb = rtcp.feedback as { count?: number; mediaSsrc?: number; fir?: { ssrc: number }[] };
  if (fb instanceof PictureLossIndication) return ourSsrc === undefined || fb.mediaSsrc === ourSsrc || fb.mediaSsrc === 0;
  if (fb.count === 4) return ourSsrc === undefined || !fb.fir?.length || fb.fir.some((e) => e.ssrc === ourSsrc);
  return false;
}
