// FrameAssembler: RTP packets → complete VP8 frames / H.264 access units, with loss and padding handling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { H264Packetizer, Vp8Packetizer, type RtpPacket } from 'werift';
import { FrameAssembler, parseH264Payload, type AssembledFrame, type RtpPacketView } from '../../stream/rtp-depacketizer.js';

const view = (p: RtpPacket): RtpPacketView => ({
  sequenceNumber: p.header.sequenceNumber,
  timestamp: p.header.timestamp,
  marker: p.header.marker,
  payload: p.payload,
});

/** A fake VP8 frame: bit 0 of the first byte is the inverse keyframe flag. */
function vp8Frame(keyframe: boolean, size: number, fill: number): Buffer {
  const b = Buffer.alloc(size, fill);
  b[0] = keyframe ? 0x10 : 0x11;
  return b;
}

function pushAll(a: FrameAssembler, packets: RtpPacketView[]): AssembledFrame[] {
  return packets.flatMap((p) => a.push(p, 0));
}

test('VP8: a frame split over several packets is reassembled byte for byte', () => {
  const pk = new Vp8Packetizer({ maxPayloadSize: 1200, sequenceNumber: 65534 }); // crosses the 16-bit wrap
  const frame = vp8Frame(true, 3000, 7);
  const packets = pk.packetize(frame, 1000).map(view);
  assert.equal(packets.length, 3);
  const out = pushAll(new FrameAssembler('VP8'), packets);
  assert.equal(out.length, 1);
  assert.ok(out[0]!.keyframe);
  assert.equal(out[0]!.rtpTimestamp, 1000);
  assert.deepEqual(out[0]!.data, frame);
});

test('VP8: packets reordered within a frame still assemble it', () => {
  const pk = new Vp8Packetizer({ maxPayloadSize: 1000 });
  const frame = vp8Frame(true, 2500, 3);
  const [a, b, c] = pk.packetize(frame, 5).map(view);
  const out = pushAll(new FrameAssembler('VP8'), [b!, a!, c!]);
  assert.equal(out.length, 1);
  assert.deepEqual(out[0]!.data, frame);
});

test('VP8: a lost packet drops its frame, reports loss, and asks again for every frame skipped until the next keyframe', () => {
  const losses: string[] = [];
  const a = new FrameAssembler('VP8', (r) => losses.push(r));
  const pk = new Vp8Packetizer({ maxPayloadSize: 1000 });
  const f1 = pk.packetize(vp8Frame(true, 1500, 1), 3000).map(view);
  const f2 = pk.packetize(vp8Frame(false, 1500, 2), 6000).map(view);
  const f3 = pk.packetize(vp8Frame(false, 1500, 3), 9000).map(view);
  const f4 = pk.packetize(vp8Frame(true, 1500, 4), 12000).map(view);
  const out = pushAll(a, [...f1, f2[0]! /* f2[1] lost */, ...f3, ...f4]);
  assert.deepEqual(
    out.map((f) => f.rtpTimestamp),
    [3000, 12000],
  );
  assert.deepEqual(losses, ['loss', 'still awaiting a keyframe']);
  assert.equal(a.stats.framesLost, 1);
  assert.equal(a.stats.framesSkippedAwaitingKeyframe, 1);
});

test('VP8: padding-only packets between frames are skipped, not treated as loss', () => {
  const losses: string[] = [];
  const a = new FrameAssembler('VP8', (r) => losses.push(r));
  const pk = new Vp8Packetizer({ maxPayloadSize: 1200, sequenceNumber: 100 });
  const f1 = pk.packetize(vp8Frame(true, 500, 1), 3000).map(view);
  const pad1 = { sequenceNumber: 101, timestamp: 3000, marker: false, payload: Buffer.alloc(0) };
  const pad2 = { sequenceNumber: 102, timestamp: 3000, marker: false, payload: Buffer.alloc(0) };
  const f2 = new Vp8Packetizer({ maxPayloadSize: 1200, sequenceNumber: 103 }).packetize(vp8Frame(false, 500, 2), 6000).map(view);
  const out = pushAll(a, [...f1, pad1, ...f2, pad2]); // pad2 arrives late, after the frame that follows it
  assert.deepEqual(
    out.map((f) => f.rtpTimestamp),
    [3000, 6000],
  );
  assert.deepEqual(losses, []);
  assert.equal(a.stats.paddingPackets, 2);
});

test('H.264: STAP-A (SPS+PPS) and FU-A (large IDR) reassemble to the Annex-B access unit', () => {
  const sps = Buffer.concat([Buffer.from([0x67, 0x42, 0xe0, 0x1f]), randomBytes(8)]);
  const pps = Buffer.from([0x68, 0xce, 0x3c, 0x80]);
  const idr = Buffer.concat([Buffer.from([0x65]), randomBytes(4000)]);
  const sc = Buffer.from([0, 0, 0, 1]);
  const au = Buffer.concat([sc, sps, sc, pps, sc, idr]);
  const packets = new H264Packetizer({ maxPayloadSize: 1200 }).packetize(au, 90000).map(view);
  const types = packets.map((p) => p.payload[0]! & 0x1f);
  assert.equal(types[0], 24, 'SPS+PPS aggregated in a STAP-A');
  assert.ok(
    types.slice(1).every((t) => t === 28),
    'IDR fragmented in FU-As',
  );
  const out = pushAll(new FrameAssembler('H264'), packets);
  assert.equal(out.length, 1);
  assert.ok(out[0]!.keyframe);
  assert.deepEqual(out[0]!.data, au);
});

test('H.264: a lost FU-A fragment drops the access unit and requests a keyframe', () => {
  const losses: string[] = [];
  const a = new FrameAssembler('H264', (r) => losses.push(r));
  const pk = new H264Packetizer({ maxPayloadSize: 1200 });
  const sc = Buffer.from([0, 0, 0, 1]);
  const key = Buffer.concat([sc, Buffer.from([0x65]), randomBytes(3000)]);
  const inter = (n: number) => Buffer.concat([sc, Buffer.from([0x41]), Buffer.alloc(2500, n)]);
  const f1 = pk.packetize(key, 1).map(view);
  const f2 = pk.packetize(inter(2), 2).map(view);
  const f3 = pk.packetize(inter(3), 3).map(view);
  const out = pushAll(a, [...f1, f2[0]!, f2[2]!, ...f3]);
  assert.deepEqual(
    out.map((f) => f.rtpTimestamp),
    [1],
  );
  assert.deepEqual(losses, ['loss', 'still awaiting a keyframe']);
});

test('H.264: truncated STAP-A and unsupported NAL types are rejected without throwing', () => {
  assert.equal(parseH264Payload(Buffer.from([0x18, 0x00, 0x10, 0x67])), null); // size runs past the end
  assert.equal(parseH264Payload(Buffer.from([0x19, 0x00])), null); // STAP-B
  assert.equal(parseH264Payload(Buffer.from([0x9c, 0x85, 0x00])), null); // forbidden bit
});

test('garbage payloads never throw and are counted; a later keyframe still comes through', () => {
  for (const codec of ['VP8', 'H264'] as const) {
    const a = new FrameAssembler(codec);
    let seq = 0;
    for (let i = 0; i < 2000; i++) {
      const payload = randomBytes(Math.floor(Math.random() * 40));
      assert.doesNotThrow(() => a.push({ sequenceNumber: seq++ & 0xffff, timestamp: (i >> 2) * 3000, marker: i % 4 === 3, payload }, 0));
    }
    assert.ok(a.stats.malformedPackets > 0, `${codec}: malformed packets counted`);
    const key =
      codec === 'VP8'
        ? new Vp8Packetizer({ sequenceNumber: seq & 0xffff }).packetize(vp8Frame(true, 800, 9), 10_000_000)
        : new H264Packetizer({ sequenceNumber: seq & 0xffff }).packetize(
            Buffer.concat([Buffer.from([0, 0, 0, 1, 0x65]), randomBytes(800)]),
            10_000_000,
          );
    const out = pushAll(a, key.map(view));
    assert.equal(out.at(-1)?.rtpTimestamp, 10_000_000, `${codec}: keyframe after garbage`);
    assert.ok(out.at(-1)!.keyframe);
  }
});

test('stray frames far ahead do not freeze the stream: three packets in sequence after it start reception over', () => {
  const a = new FrameAssembler('VP8');
  const pk = new Vp8Packetizer({ maxPayloadSize: 1200, sequenceNumber: 100 });
  const frameAt = (ts: number): RtpPacketView[] => pk.packetize(vp8Frame(true, 300, ts & 0xff), ts).map(view);
  assert.equal(pushAll(a, [...frameAt(3000), ...frameAt(6000)]).length, 2);
  // Two frames whose sequence numbers and timestamps are half the number space ahead (a hostile or broken
  // sender): once they are taken, every packet of the real stream looks late.
  const far = new Vp8Packetizer({ maxPayloadSize: 1200, sequenceNumber: 30_000 });
  const strays = [0, 1].flatMap((i) => far.packetize(vp8Frame(true, 300, 1), (6000 + 0x7fff0000 + i * 3000) >>> 0).map(view));
  assert.equal(pushAll(a, strays).length, 2);
  const after = [9000, 12000, 15000, 18000, 21000].map((ts) => frameAt(ts));
  const out = after.flatMap((packets) => pushAll(a, packets));
  assert.equal(a.stats.resyncs, 1);
  assert.deepEqual(
    out.map((f) => f.rtpTimestamp),
    [15000, 18000, 21000],
    'the first two in-sequence packets are dropped as late, then the stream is followed again',
  );
});

test('ordinary reordering (a packet a few behind) is late, never a resync', () => {
  const a = new FrameAssembler('VP8');
  const pk = new Vp8Packetizer({ maxPayloadSize: 1200, sequenceNumber: 500 });
  const frames = [3000, 6000, 9000, 12000].map((ts) => pk.packetize(vp8Frame(true, 300, 2), ts).map(view));
  pushAll(a, frames.flat());
  const old = frames[0]!;
  const replayed = [...old, ...old, ...old, ...old].map((p, i) => ({ ...p, sequenceNumber: (500 - 50 + i) & 0xffff }));
  assert.deepEqual(pushAll(a, replayed), []);
  assert.equal(a.stats.resyncs, 0);
  assert.equal(a.stats.latePackets, replayed.length);
});
