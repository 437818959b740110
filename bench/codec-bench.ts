// `sds bench codec`: what encoding and decoding one frame costs with each implementation this machine has, at the
// stream's size: libvpx VP8 and libx264 H.264 on the host cores (the server's codecs), and NVIDIA's NVENC (H.264)
// and NVDEC (cuvid: VP8, H.264) where node-av's FFmpeg has them and a GPU opens them. An implementation that cannot
// be opened is reported as unavailable with FFmpeg's reason, so the same command runs on any machine.
import type { RgbImage } from '../frame/video-frame.js';
import {
  hardwareCodecsInBuild,
  VideoDecoder,
  VideoEncoder,
  type DecoderImplementation,
  type EncodedPicture,
  type EncoderImplementation,
  type VideoCodecName,
} from '../stream/video-codec.js';
import { latencyStats, type LatencyStats } from './model-bench.js';

export interface CodecBenchOptions {
  width: number;
  height: number;
  frames: number;
  maxBitrateKbps?: number;
}

export interface CodecBenchRow {
  codec: VideoCodecName;
  direction: 'encode' | 'decode';
  implementation: EncoderImplementation | DecoderImplementation;
  /** undefined when measured; else why it could not be opened or run. */
  unavailable?: string;
  ms?: LatencyStats;
}

/** A moving picture with edges and gradients, so neither codec gets a trivially static frame. */
function picture(width: number, height: number, t: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0, i = 0; y < height; y++)
    for (let x = 0; x < width; x++, i += 3) {
      data[i] = (x + 2 * t) & 0xff;
      data[i + 1] = (y + t) & 0xff;
      data[i + 2] = ((x >> 4) + (y >> 4) + t) & 1 ? 200 : 40;
    }
  return { width, height, data };
}

export async function runCodecBench(options: CodecBenchOptions): Promise<CodecBenchRow[]> {
  const { width, height, frames } = options;
  const clip = Array.from({ length: Math.min(frames, 60) }, (_, t) => picture(width, height, t));
  const rows: CodecBenchRow[] = [];
  const encoded = new Map<VideoCodecName, EncodedPicture[]>();
  const plans: Array<[VideoCodecName, EncoderImplementation]> = [
    ['VP8', 'software'],
    ['H264', 'software'],
    ['H264', 'nvenc'],
  ];
  for (const [codec, implementation] of plans) {
    let encoder: VideoEncoder | undefined;
    try {
      encoder = await VideoEncoder.create({ codec, width, height, maxBitrateKbps: options.maxBitrateKbps ?? 2000, implementation });
      const times: number[] = [];
      const pictures: EncodedPicture[] = [];
      for (let i = 0; i < frames; i++) {
        const start = performance.now();
        const out = await encoder.encode(clip[i % clip.length]!, i * 3000, i === 0);
        times.push(performance.now() - start);
        pictures.push(...out);
      }
      rows.push({ codec, direction: 'encode', implementation, ms: latencyStats(times.slice(Math.min(5, frames - 1))) });
      if (implementation === 'software') encoded.set(codec, pictures);
    } catch (err) {
      rows.push({ codec, direction: 'encode', implementation, unavailable: (err as Error).message });
    } finally {
      await encoder?.close();
    }
  }
  for (const codec of ['VP8', 'H264'] as const) {
    const pictures = encoded.get(codec);
    for (const implementation of ['software', 'cuvid'] as const) {
      if (!pictures) {
        rows.push({ codec, direction: 'decode', implementation, unavailable: 'nothing to decode: the software encoder failed' });
        continue;
      }
      let decoder: VideoDecoder | undefined;
      try {
        decoder = await VideoDecoder.create(codec, implementation);
        const times: number[] = [];
        for (const p of pictures) {
          const start = performance.now();
          const out = await decoder.decode(p.data, p.keyframe);
          times.push(performance.now() - start);
          for (const f of out) f.free();
        }
        rows.push({ codec, direction: 'decode', implementation, ms: latencyStats(times.slice(Math.min(5, times.length - 1))) });
      } catch (err) {
        rows.push({ codec, direction: 'decode', implementation, unavailable: (err as Error).message });
      } finally {
        await decoder?.close();
      }
    }
  }
  return rows;
}

export function formatCodecTable(rows: CodecBenchRow[], options: CodecBenchOptions): string {
  const build = hardwareCodecsInBuild();
  const lines = [
    `codecs at ${options.width}×${options.height}, ${options.frames} frames · ms per frame · in this FFmpeg build: ` +
      `h264_nvenc ${build.nvencH264 ? 'yes' : 'no'}, h264_cuvid ${build.cuvidH264 ? 'yes' : 'no'}, vp8_cuvid ${build.cuvidVp8 ? 'yes' : 'no'}`,
    '| codec | direction | implementation | median | p95 |',
    '|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const cells = r.ms ? `${r.ms.median.toFixed(2)} | ${r.ms.p95.toFixed(2)}` : `unavailable: ${r.unavailable} |`;
    lines.push(`| ${r.codec} | ${r.direction} | ${r.implementation} | ${cells} |`);
  }
  return lines.join('\n') + '\n';
}
