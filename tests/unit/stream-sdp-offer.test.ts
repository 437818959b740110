// Offer validation: what a publisher sends decides codec and direction, and bad offers fail with a reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acceptBundleOnly, chooseCodec, parseOffer } from '../../stream/sdp-offer.js';
import { SdpError, UnsupportedCodecError } from '../../stream/errors.js';
import { coverCrop } from '../../stream/video-codec.js';

const media = (m: string, extra: string[]) => [
  m,
  'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:abcd',
  'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  'a=fingerprint:sha-256 AA:BB',
  'a=setup:actpass',
  ...extra,
];
/** Shaped like an OBS WHIP offer: audio first, video sendonly with H264 and VP8. */
const obsOffer = [
  'v=0',
  'o=- 1 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  ...media('m=audio 9 UDP/TLS/RTP/SAVPF 111', ['a=mid:0', 'a=sendonly', 'a=rtpmap:111 opus/48000/2']),
  ...media('m=video 9 UDP/TLS/RTP/SAVPF 96 97', ['a=mid:1', 'a=sendonly', 'a=rtpmap:96 H264/90000', 'a=rtpmap:97 vp8/90000']),
  '',
].join('\r\n');

test('an OBS-style offer: audio first, sendonly video with H264 and VP8', () => {
  const offer = parseOffer(obsOffer);
  assert.equal(offer.videoDirection, 'sendonly');
  assert.deepEqual(offer.offeredVideoCodecs, ['H264', 'VP8']);
  assert.equal(offer.hasAudio, true);
  assert.equal(offer.hasDataChannel, false);
});

test('the codec is the first of the server preference that the offer has', () => {
  const offer = parseOffer(obsOffer);
  assert.equal(chooseCodec(offer, ['VP8', 'H264']), 'VP8');
  assert.equal(chooseCodec(offer, ['H264']), 'H264');
  assert.throws(() => chooseCodec({ ...offer, offeredVideoCodecs: ['AV1', 'VP9'] }, ['VP8', 'H264']), UnsupportedCodecError);
});

test('offers without video, ICE credentials or a fingerprint are SdpErrors that say so', () => {
  assert.throws(
    () => parseOffer(''),
    (e: unknown) => e instanceof SdpError && /empty/.test(e.message),
  );
  assert.throws(() => parseOffer(obsOffer.replace(/m=video[^]*$/, '')), /no video m-line/);
  assert.throws(() => parseOffer(obsOffer.replaceAll('a=ice-pwd:', 'a=x-pwd:')), /ICE credentials/);
  assert.throws(() => parseOffer(obsOffer.replaceAll('a=fingerprint:', 'a=x:')), /fingerprint/);
  assert.throws(() => parseOffer(obsOffer.replace('a=mid:1\r\na=sendonly', 'a=mid:1\r\na=recvonly')), /must send video/);
});

test('a WHEP viewer offer must receive video: recvonly (or sendrecv) passes, sendonly is an SdpError', () => {
  const viewerOffer = obsOffer.replaceAll('a=sendonly', 'a=recvonly');
  assert.equal(parseOffer(viewerOffer, 'viewer').videoDirection, 'recvonly');
  assert.throws(() => parseOffer(obsOffer, 'viewer'), /must receive video/);
  assert.throws(() => parseOffer(viewerOffer), /must send video/, 'and a publisher offer must still send');
});

test('bundle-only m-lines (port 0, as webrtcbin offers with max-bundle) get a usable port; others are untouched', () => {
  const bundled = obsOffer.replace('m=video 9 ', 'm=video 0 ').replace('a=mid:1\r\n', 'a=mid:1\r\na=bundle-only\r\n');
  const fixed = acceptBundleOnly(bundled);
  assert.match(fixed, /^m=video 9 UDP\/TLS\/RTP\/SAVPF 96 97\r$/m);
  assert.equal(acceptBundleOnly(obsOffer), obsOffer);
  const rejected = obsOffer.replace('m=video 9 ', 'm=video 0 ');
  assert.equal(acceptBundleOnly(rejected), rejected, 'a port-0 m-line without bundle-only stays rejected');
});

test('cover crop keeps the target aspect ratio, centered, with even offsets', () => {
  assert.deepEqual(coverCrop(640, 480, 320, 256), { x: 20, y: 0, width: 600, height: 480 });
  assert.deepEqual(coverCrop(1280, 720, 320, 256), { x: 190, y: 0, width: 900, height: 720 });
  assert.deepEqual(coverCrop(480, 640, 320, 256), { x: 0, y: 128, width: 480, height: 384 });
});
