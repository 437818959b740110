// The playout-delay RTP header extension: its wire format, and that the server negotiates it when a
// browser offers it (Chromium does) and stamps every returned video packet with min = max = 0.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RTCRtpHeaderExtensionParameters, RtpHeader, RtpPacket, type RTCRtpTransceiver } from 'werift';
import { PLAYOUT_DELAY_URI, playoutDelayPayload, playoutDelayStamper } from '../../stream/playout-delay.js';
import { createPublisherSession } from '../../stream/publisher-session.js';
import { makeOffer } from '../support/werift-offer.js';

test('the payload is two 12-bit delays in 10 ms units', () => {
  assert.deepEqual([...playoutDelayPayload(0, 0)], [0, 0, 0]);
  assert.deepEqual([...playoutDelayPayload(100, 200)], [0x00, 0xa0, 0x14]);
  assert.deepEqual([...playoutDelayPayload(0, 1e9)], [0x00, 0x0f, 0xff], 'clamped to 12 bits');
});

test("packets are stamped with the peer's extension id, on a copy; nothing when not negotiated or off", () => {
  const transceiver = {
    headerExtensions: [new RTCRtpHeaderExtensionParameters({ uri: PLAYOUT_DELAY_URI, id: 7 })],
  } as unknown as RTCRtpTransceiver;
  const packet = new RtpPacket(new RtpHeader({ payloadType: 96, sequenceNumber: 1, timestamp: 90, ssrc: 1 }), Buffer.from([1, 2, 3]));
  const stamped = playoutDelayStamper(transceiver, 0)!(packet);
  assert.deepEqual(stamped.header.extensions, [{ id: 7, payload: Buffer.from([0, 0, 0]) }]);
  assert.deepEqual(packet.header.extensions, [], 'the shared packet is untouched');
  assert.equal(playoutDelayStamper(transceiver, undefined), undefined);
  assert.equal(playoutDelayStamper({ headerExtensions: [] } as unknown as RTCRtpTransceiver, 0), undefined);
});

test('a publisher that offers playout-delay gets it in the answer, under its own id', async () => {
  const peer = await makeOffer({ headerExtensions: [new RTCRtpHeaderExtensionParameters({ uri: PLAYOUT_DELAY_URI })] });
  const offered = /a=extmap:(\d+) http:\/\/www\.webrtc\.org\/experiments\/rtp-hdrext\/playout-delay/.exec(peer.offer);
  assert.ok(offered, 'the test peer offers it');
  const session = await createPublisherSession(peer.offer, {
    target: { width: 320, height: 256 },
    codecs: ['VP8'],
    maxBitrateKbps: 1000,
    playoutDelayMaxMs: 0,
    onFrame: () => {},
    onData: () => {},
    onClosed: () => {},
  });
  try {
    assert.ok(session.answerSdp.includes(`a=extmap:${offered[1]} ${PLAYOUT_DELAY_URI}`), "answered under the offer's id");
  } finally {
    await session.close();
    await peer.close();
  }
});
