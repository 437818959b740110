// The playout-delay RTP header extension (http://www.webrtc.org/experiments/rtp-hdrext/playout-delay):
// the sender tells the receiver how much to buffer before rendering. Restyled frames keep their input's RTP
// timestamps, so the receiver sees the server's processing-time swings as network jitter and grows its
// jitter buffer to hide them: `sds bench browser` measured 36–60 ms of Chromium's buffering against a
// ~12 ms median server latency. Sending min = max = 0 asks it to render each frame as soon as it is decoded.
import { RTCRtpHeaderExtensionParameters, type RTCRtpTransceiver, type RtpPacket } from 'werift';

export const PLAYOUT_DELAY_URI = 'http://www.webrtc.org/experiments/rtp-hdrext/playout-delay';

/** Offer/answer it (werift keeps it only if the peer's offer lists it, under the peer's id). */
export function usePlayoutDelay(): RTCRtpHeaderExtensionParameters {
  return new RTCRtpHeaderExtensionParameters({ uri: PLAYOUT_DELAY_URI });
}

/** The extension's 3 bytes: 12-bit minimum and maximum delay, in 10 ms units. */
export function playoutDelayPayload(minMs: number, maxMs: number): Buffer {
  const min = Math.min(0xfff, Math.max(0, Math.round(minMs / 10)));
  const max = Math.min(0xfff, Math.max(min, Math.round(maxMs / 10)));
  return Buffer.from([min >> 4, ((min & 0xf) << 4) | (max >> 8), max & 0xff]);
}

/**
 * A function that stamps packets for `transceiver` with the playout delay, or undefined when the peer did
 * not negotiate the extension (or `maxMs` is undefined: the operator turned it off). The packets are
 * shared between consumers, so each is copied before it gets this peer's extension id.
 */
export function playoutDelayStamper(
  transceiver: RTCRtpTransceiver,
  maxMs: number | undefined,
): ((packet: RtpPacket) => RtpPacket) | undefined {
  if (maxMs === undefined) return undefined;
  const id = transceiver.headerExtensions.find((e) => e.uri === PLAYOUT_DELAY_URI)?.id;
  if (id === undefined) return undefined;
  const payload = playoutDelayPayload(0, maxMs);
  return (packet) => {
    const copy = packet.clone();
    copy.header.extensions = [...copy.header.extensions.filter((e) => e.id !== id), { id, payload }];
    return copy;
  };
}
