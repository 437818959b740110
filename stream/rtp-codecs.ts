// The codec parameters every werift peer here uses: the server's publisher and viewer sessions and the
// project's own loopback clients. Explicit codecs (werift issue #511) and H264 written in upper case
// (NOTES-webrtc.md); the H.264 profile is Constrained Baseline 3.1, packetization mode 1, as browsers offer.
import { RTCRtpCodecParameters } from 'werift';
import type { VideoCodecName } from './video-codec.js';

export const H264_FMTP = 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1';

export type RtcpFeedback = Array<{ type: string; parameter?: string }>;

/** `payloadType` pins the number a peer offers (werift picks one otherwise). */
export function videoCodecParameters(codec: VideoCodecName, rtcpFeedback: RtcpFeedback, payloadType?: number): RTCRtpCodecParameters {
  return codec === 'VP8'
    ? new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, rtcpFeedback, payloadType })
    : new RTCRtpCodecParameters({ mimeType: 'video/H264', clockRate: 90000, rtcpFeedback, parameters: H264_FMTP, payloadType });
}

export function opusParameters(): RTCRtpCodecParameters {
  return new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2 });
}
