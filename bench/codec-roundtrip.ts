// Measures the stream/ codec stages on this machine: 640×480 encode → decode → cover-scale to the model size,
// and model-size RGB → encode. Run: node dist/bench/codec-roundtrip.js [VP8|H264] [frames]
import { VideoDecoder, VideoEncoder, PictureScaler, type VideoCodecName } from '../stream/video-codec.js';
import { makeTestPattern } from './test-pattern.js';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

async function main(): Promise<void> {
  const codec = (process.argv[2] ?? 'VP8') as VideoCodecName;
  const n = Number(process.argv[3] ?? 60);
  const src = await VideoEncoder.create({ codec, width: 640, height: 480, maxBitrateKbps: 2500 });
  const dec = await VideoDecoder.create(codec);
  const scaler = new PictureScaler({ width: 320, height: 256 });
  const out = await VideoEncoder.create({ codec, width: 320, height: 256, maxBitrateKbps: 1000 });
  const t = { srcEncode: [] as number[], decode: [] as number[], scale: [] as number[], encode: [] as number[] };
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const img = makeTestPattern(640, 480, i);
    let t0 = performance.now();
    const pkts = await src.encode(img, i * 3000, i === 0);
    t.srcEncode.push(performance.now() - t0);
    for (const p of pkts) {
      bytes += p.data.length;
      t0 = performance.now();
      const pics = await dec.decode(p.data, p.keyframe);
      t.decode.push(performance.now() - t0);
      for (const pic of pics) {
        t0 = performance.now();
        const rgb = await scaler.toRgb(pic);
        t.scale.push(performance.now() - t0);
        pic.free();
        t0 = performance.now();
        await out.encode(rgb, i * 3000, i === 0);
        t.encode.push(performance.now() - t0);
      }
    }
  }
  for (const [k, v] of Object.entries(t)) console.log(`${codec} ${k.padEnd(10)} n=${v.length} p50=${pct(v, 50).toFixed(2)}ms p95=${pct(v, 95).toFixed(2)}ms`);
  console.log(`${codec} 640x480 stream: ${((bytes * 8) / (n / 30) / 1000).toFixed(0)} kbps`);
  await Promise.all([src.close(), dec.close(), scaler.close(), out.close()]);
}
await main();
