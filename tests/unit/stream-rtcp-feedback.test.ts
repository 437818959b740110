// REMB we write must parse back to the announced bitrate; PLI/FIR aimed at our stream count as keyframe requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PictureLossIndication, RtcpPacketConverter, RtcpPayloadSpecificFeedback, ReceiverEstimatedMaxBitrate } from 'werift';
import { buildRemb, isKeyframeRequest } from '../../stream/rtcp-feedback.js';

test('REMB announcing 2.5 Mbps parses back to 2.5 Mbps for the given SSRC', () => {
  const wire = buildRemb(1111, [2222], 2_500_000).serialize();
  const [parsed] = RtcpPacketConverter.deSerialize(wire);
  assert.ok(parsed instanceof RtcpPayloadSpecificFeedback);
  const remb = parsed.feedback;
  assert.ok(remb instanceof ReceiverEstimatedMaxBitrate);
  assert.equal(remb.bitrate, 2_500_000n);
  assert.deepEqual(remb.ssrcFeedbacks, [2222]);
});

test('a PLI for our SSRC is a keyframe request; one for another stream is not', () => {
  const pli = (mediaSsrc: number) => new RtcpPayloadSpecificFeedback({ feedback: new PictureLossIndication({ senderSsrc: 1, mediaSsrc }) });
  assert.equal(isKeyframeRequest(pli(42), 42), true);
  assert.equal(isKeyframeRequest(pli(43), 42), false);
  const [fromWire] = RtcpPacketConverter.deSerialize(pli(42).serialize());
  assert.equal(isKeyframeRequest(fromWire!, 42), true);
});

test('REMB is not a keyframe request', () => {
  assert.equal(isKeyframeRequest(buildRemb(1, [42], 1_000_000), 42), false);
});
