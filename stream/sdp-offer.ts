// Validates a publisher's (WHIP) or viewer's (WHEP) SDP offer before any WebRTC state is created, so a bad
// offer is answered with a precise 400/415 instead of a vague negotiation failure. Only what the session
// needs is extracted.
import { SdpError, UnsupportedCodecError } from './errors.js';
import type { VideoCodecName } from './video-codec.js';

export type MediaDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface OfferSummary {
  /** Direction of the offer's video m-line, from the offerer's point of view. */
  videoDirection: MediaDirection;
  /** Video codecs the offer lists, upper-case encoding names (e.g. VP8, H264, AV1). */
  offeredVideoCodecs: string[];
  hasAudio: boolean;
  hasDataChannel: boolean;
}

export const SUPPORTED_CODECS: readonly VideoCodecName[] = ['VP8', 'H264'];

/** Who sends the offer: a publisher must send video; a viewer must be able to receive it. */
export type OfferRole = 'publisher' | 'viewer';

export function parseOffer(sdp: unknown, role: OfferRole = 'publisher'): OfferSummary {
  if (typeof sdp !== 'string' || sdp.trim() === '') throw new SdpError('the body is empty; send the SDP offer as application/sdp');
  const lines = sdp
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  if (lines[0] !== 'v=0') throw new SdpError('it must start with "v=0"');
  if (!lines.some((l) => l.startsWith('o='))) throw new SdpError('the origin line "o=" is missing');
  const sections: string[][] = [];
  for (const l of lines) {
    if (l.startsWith('m=')) sections.push([l]);
    else sections.at(-1)?.push(l);
  }
  if (sections.length === 0) throw new SdpError('it has no media sections ("m=" lines)');
  const session = lines.slice(
    0,
    lines.findIndex((l) => l.startsWith('m=')),
  );
  const attr = (section: string[], name: string): string | undefined =>
    section.find((l) => l.startsWith(`a=${name}:`))?.slice(name.length + 3) ??
    session.find((l) => l.startsWith(`a=${name}:`))?.slice(name.length + 3);
  const video = sections.find((s) => s[0]!.startsWith('m=video '));
  if (!video) throw new SdpError('it has no video m-line; offer a video track');
  const m = /^m=video \d+ \S+ ([\d ]+)$/.exec(video[0]!);
  if (!m) throw new SdpError(`malformed video m-line "${video[0]}"`);
  for (const s of sections) {
    if (!attr(s, 'ice-ufrag') || !attr(s, 'ice-pwd')) throw new SdpError('ICE credentials (a=ice-ufrag/a=ice-pwd) are missing');
    if (!attr(s, 'fingerprint')) throw new SdpError('the DTLS fingerprint (a=fingerprint) is missing');
  }
  const payloadTypes = new Set(m[1]!.trim().split(/\s+/));
  const offeredVideoCodecs = [
    ...new Set(
      video
        .filter((l) => l.startsWith('a=rtpmap:'))
        .map((l) => /^a=rtpmap:(\d+) ([^/\s]+)/.exec(l))
        .filter((x): x is RegExpExecArray => x !== null && payloadTypes.has(x[1]!))
        .map((x) => x[2]!.toUpperCase()),
    ),
  ];
  const directions: MediaDirection[] = ['sendrecv', 'sendonly', 'recvonly', 'inactive'];
  const videoDirection = directions.find((d) => video.includes(`a=${d}`)) ?? 'sendrecv';
  if (role === 'publisher' && (videoDirection === 'recvonly' || videoDirection === 'inactive')) {
    throw new SdpError(`the video m-line is ${videoDirection}; a publisher must send video (sendonly or sendrecv)`);
  }
  if (role === 'viewer' && (videoDirection === 'sendonly' || videoDirection === 'inactive')) {
    throw new SdpError(`the video m-line is ${videoDirection}; a WHEP viewer must receive video (recvonly)`);
  }
  return {
    videoDirection,
    offeredVideoCodecs,
    hasAudio: sections.some((s) => s[0]!.startsWith('m=audio ')),
    hasDataChannel: sections.some((s) => s[0]!.startsWith('m=application ')),
  };
}

/** The first of `preferred` that the offer has; throws UnsupportedCodecError naming what would work. */
export function chooseCodec(offer: OfferSummary, preferred: readonly VideoCodecName[]): VideoCodecName {
  const allowed = preferred.filter((c) => SUPPORTED_CODECS.includes(c));
  const chosen = allowed.find((c) => offer.offeredVideoCodecs.includes(c));
  if (!chosen) throw new UnsupportedCodecError(offer.offeredVideoCodecs, allowed.length ? allowed : [...SUPPORTED_CODECS]);
  return chosen;
}

/**
 * RFC 8843 §6: with bundle-policy max-bundle, GStreamer's webrtcbin (and other WHIP clients) offer every
 * m-line after the first with port 0 and `a=bundle-only`. werift reads port 0 as a rejected m-line and drops
 * the track, so such sections get the placeholder port 9 (the transport is the bundle's anyway).
 */
export function acceptBundleOnly(sdp: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const sections = sdp.split(/(?=^m=)/m);
  return sections
    .map((section) =>
      /^a=bundle-only\s*$/m.test(section) ? section.replace(/^m=(\w+) 0 /, (_m, kind: string) => `m=${kind} 9 `) : section,
    )
    .join('')
    .replace(/\r?\n/g, eol);
}
