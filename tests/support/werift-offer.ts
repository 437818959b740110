// A real werift peer that makes browser-like offers (sendrecv video + a `control` DataChannel), for
// tests that exercise signalling and session lifecycle without sending media.
import { RTCPeerConnection, RTCRtpCodecParameters, type RTCRtpHeaderExtensionParameters } from 'werift';
import { iceGatheringComplete } from '../../stream/ice-gathering.js';

export interface OfferingPeer {
  pc: RTCPeerConnection;
  offer: string;
  close(): Promise<void>;
}

export async function makeOffer(
  options: { codecs?: ('VP8' | 'H264' | 'AV1')[]; audio?: boolean; headerExtensions?: RTCRtpHeaderExtensionParameters[] } = {},
): Promise<OfferingPeer> {
  const video = (options.codecs ?? ['VP8']).map((name, i) =>
    name === 'H264'
      ? new RTCRtpCodecParameters({
          mimeType: 'video/H264',
          clockRate: 90000,
          payloadType: 102 + i,
          parameters: 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1',
          rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
        })
      : new RTCRtpCodecParameters({
          mimeType: `video/${name}`,
          clockRate: 90000,
          payloadType: 96 + i,
          rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
        }),
  );
  // max-bundle: with werift's default policy, close() leaves the sockets of unused transports open.
  const pc = new RTCPeerConnection({
    bundlePolicy: 'max-bundle',
    codecs: {
      video,
      audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 })],
    },
    ...(options.headerExtensions ? { headerExtensions: { video: options.headerExtensions, audio: [] } } : {}),
  });
  if (options.audio) pc.addTransceiver('audio', { direction: 'sendrecv' });
  pc.addTransceiver('video', { direction: 'sendrecv' });
  pc.createDataChannel('control');
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringComplete(pc);
  return { pc, offer: pc.localDescription!.sdp, close: () => pc.close() };
}
