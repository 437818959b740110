// In-process VP8/H.264 decode and encode (node-av), plus the pixel conversions around them: decoded picture →
// model-resolution RGB24 by cover crop, and RGB24 → YUV420P for the encoder. Every codec call is the async
// variant (libuv threadpool) so the main thread, which also runs werift, never blocks on a codec.
import { Codec, CodecContext, FFmpegError, Frame, Log, Packet, Scaler } from 'node-av';
import {
  AV_CODEC_FLAG_LOW_DELAY,
  AV_LOG_FATAL,
  AV_CODEC_ID_H264,
  AV_CODEC_ID_VP8,
  AV_PICTURE_TYPE_I,
  AV_PICTURE_TYPE_NONE,
  AV_PIX_FMT_RGB24,
  AV_PIX_FMT_YUV420P,
  AV_PKT_FLAG_KEY,
  AVERROR_EAGAIN,
  AVERROR_EOF,
  FF_DECODER_H264,
  FF_DECODER_H264_CUVID,
  FF_DECODER_VP8,
  FF_DECODER_VP8_CUVID,
  FF_ENCODER_H264_NVENC,
  FF_ENCODER_LIBVPX_VP8,
  FF_ENCODER_LIBX264,
} from 'node-av/constants';
import type { RgbImage } from '../frame/video-frame.js';
import { CodecUnavailableError } from './errors.js';
import { acquire, release } from './resource-counters.js';

// libx264/libvpx print banners and per-session summaries at info level on every open/close, and a corrupt
// or hostile stream makes the decoders print an error line per packet straight to stderr — a log flood an
// attacker controls. Decode failures are counted and logged (rate-limited) by the session instead, so
// FFmpeg itself only speaks when something is fatal. (FFmpeg's log level is process-wide.)
Log.setLevel(AV_LOG_FATAL);

export type VideoCodecName = 'VP8' | 'H264';

/** One decoded picture; the caller owns it and must call `free()`. */
export type DecodedPicture = Frame;

/** Compressed bytes of one encoded picture, ready for a packetizer (H.264: Annex-B with in-band SPS/PPS). */
export interface EncodedPicture {
  data: Buffer;
  keyframe: boolean;
}

/** Runs codec calls one at a time and lets close() wait for the one in flight before freeing native memory. */
class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
  idle(): Promise<unknown> {
    return this.tail;
  }
}

/** Decodes one stream's access units in order. Calls must not overlap: await each before the next. */
export class VideoDecoder {
  private closed = false;
  private readonly packet = new Packet();
  private readonly queue = new SerialQueue();

  private constructor(private readonly ctx: CodecContext) {
    this.packet.alloc();
    acquire('decoders');
  }

  /**
   * `cuvid`: NVIDIA's hardware decoder (NVDEC) through FFmpeg, where the build has it and a GPU is there to open it;
   * its pictures come back in system memory (NV12). Measured by `sds bench codec`; the server uses `software`.
   */
  static async create(codec: VideoCodecName, implementation: DecoderImplementation = 'software'): Promise<VideoDecoder> {
    const name =
      implementation === 'cuvid'
        ? codec === 'VP8'
          ? FF_DECODER_VP8_CUVID
          : FF_DECODER_H264_CUVID
        : codec === 'VP8'
          ? FF_DECODER_VP8
          : FF_DECODER_H264;
    const dec = Codec.findDecoderByName(name);
    if (!dec) throw new CodecUnavailableError(`No ${codec} decoder (${name}) in this FFmpeg build`);
    const ctx = new CodecContext();
    ctx.allocContext3(dec);
    ctx.codecId = codec === 'VP8' ? AV_CODEC_ID_VP8 : AV_CODEC_ID_H264;
    // One thread and low-delay: frame threading would hold each picture back by (threads - 1) frames.
    ctx.threadCount = 1;
    ctx.setFlags(AV_CODEC_FLAG_LOW_DELAY);
    const ret = await ctx.open2(dec);
    if (ret < 0) {
      ctx.freeContext();
      throw new CodecUnavailableError(`Cannot open ${codec} decoder: ${new FFmpegError(ret).message}`);
    }
    return new VideoDecoder(ctx);
  }

  /**
   * Decode one complete access unit. Returns the pictures it produced (normally 0 or 1).
   * Throws FFmpegError on corrupt data; the decoder stays usable (ask for a keyframe).
   */
  decode(data: Buffer, keyframe: boolean): Promise<DecodedPicture[]> {
    return this.queue.run(() => this.decodeNow(data, keyframe));
  }

  private async decodeNow(data: Buffer, keyframe: boolean): Promise<DecodedPicture[]> {
    if (this.closed) return [];
    this.packet.unref();
    this.packet.data = data;
    if (keyframe) this.packet.flags = AV_PKT_FLAG_KEY;
    const sent = await this.ctx.sendPacket(this.packet);
    if (sent < 0 && sent !== AVERROR_EAGAIN) FFmpegError.throwIfError(sent, 'decode');
    const out: Frame[] = [];
    for (;;) {
      if (this.closed) break;
      const frame = new Frame();
      frame.alloc();
      const ret = await this.ctx.receiveFrame(frame);
      if (ret === AVERROR_EAGAIN || ret === AVERROR_EOF || ret < 0) {
        frame.free();
        if (ret < 0 && ret !== AVERROR_EAGAIN && ret !== AVERROR_EOF) FFmpegError.throwIfError(ret, 'decode');
        break;
      }
      out.push(frame);
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.idle();
    this.packet.free();
    this.ctx.freeContext();
    release('decoders');
  }
}

/** Largest centered region of `src` with the aspect ratio of `dst` (cover crop), with even offsets for 4:2:0. */
export function coverCrop(
  srcWidth: number,
  srcHeight: number,
  dstWidth: number,
  dstHeight: number,
): { x: number; y: number; width: number; height: number } {
  let width = srcWidth;
  let height = Math.round((srcWidth * dstHeight) / dstWidth);
  if (height > srcHeight) {
    height = srcHeight;
    width = Math.round((srcHeight * dstWidth) / dstHeight);
  }
  width = Math.min(srcWidth, width + (width & 1));
  height = Math.min(srcHeight, height + (height & 1));
  const x = ((srcWidth - width) >> 1) & ~1;
  const y = ((srcHeight - height) >> 1) & ~1;
  return { x, y, width, height };
}

/** Decoded picture (any size/format) → packed RGB24 at the target size, center-cropped to cover it. */
export class PictureScaler {
  private readonly scaler = new Scaler();
  private readonly queue = new SerialQueue();
  private closed = false;

  constructor(private readonly target: { width: number; height: number }) {
    acquire('scalers');
  }

  toRgb(picture: DecodedPicture): Promise<RgbImage> {
    return this.queue.run(() => this.toRgbNow(picture));
  }

  private async toRgbNow(picture: DecodedPicture): Promise<RgbImage> {
    if (this.closed) throw new Error('scaler closed');
    const crop = coverCrop(picture.width, picture.height, this.target.width, this.target.height);
    const full = crop.x === 0 && crop.y === 0 && crop.width === picture.width && crop.height === picture.height;
    const buf = await this.scaler.toBuffer(picture, {
      ...(full ? {} : { crop }),
      resize: { width: this.target.width, height: this.target.height },
      format: 'rgb',
    });
    return { width: this.target.width, height: this.target.height, data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.idle();
    this.scaler.close();
    release('scalers');
  }
}

export interface EncoderOptions {
  codec: VideoCodecName;
  width: number;
  height: number;
  maxBitrateKbps: number;
  /** Nominal frame rate, for rate control only; timestamps come from the frames. */
  fps?: number;
  /**
   * `nvenc`: H.264 on NVIDIA's hardware encoder (NVENC) through FFmpeg, with the same low-delay settings (no B-frames,
   * constrained baseline, forced IDR on request, SPS/PPS before each IDR). Measured by `sds bench codec`; the server
   * uses `software` (libvpx, libx264). VP8 has no hardware encoder.
   */
  implementation?: EncoderImplementation;
}

export type EncoderImplementation = 'software' | 'nvenc';
export type DecoderImplementation = 'software' | 'cuvid';

/** Which NVIDIA hardware codecs this FFmpeg build has (whether a GPU can open them is found by opening one). */
export function hardwareCodecsInBuild(): { nvencH264: boolean; cuvidH264: boolean; cuvidVp8: boolean } {
  return {
    nvencH264: Codec.findEncoderByName(FF_ENCODER_H264_NVENC) !== null,
    cuvidH264: Codec.findDecoderByName(FF_DECODER_H264_CUVID) !== null,
    cuvidVp8: Codec.findDecoderByName(FF_DECODER_VP8_CUVID) !== null,
  };
}

/** Real-time encoder for RGB24 pictures; keyframes at start and on request. Calls must not overlap. */
export class VideoEncoder {
  private closed = false;
  private lastPts = -1n;
  private readonly packet = new Packet();
  private readonly queue = new SerialQueue();
  private readonly scaler = new Scaler();

  private constructor(
    private readonly ctx: CodecContext,
    readonly options: EncoderOptions,
  ) {
    this.packet.alloc();
    acquire('encoders');
  }

  static async create(options: EncoderOptions): Promise<VideoEncoder> {
    const { codec, width, height } = options;
    const nvenc = options.implementation === 'nvenc';
    if (nvenc && codec !== 'H264') throw new CodecUnavailableError(`No hardware ${codec} encoder: NVENC encodes H.264`);
    const name = nvenc ? FF_ENCODER_H264_NVENC : codec === 'VP8' ? FF_ENCODER_LIBVPX_VP8 : FF_ENCODER_LIBX264;
    const enc = Codec.findEncoderByName(name);
    if (!enc) throw new CodecUnavailableError(`No ${codec} encoder (${name}) in this FFmpeg build`);
    const fps = options.fps ?? 30;
    const bitrate = BigInt(Math.max(50, options.maxBitrateKbps) * 1000);
    const ctx = new CodecContext();
    ctx.allocContext3(enc);
    ctx.width = width;
    ctx.height = height;
    ctx.pixelFormat = AV_PIX_FMT_YUV420P;
    ctx.timeBase = { num: 1, den: 90000 } as never;
    ctx.framerate = { num: fps, den: 1 } as never;
    ctx.bitRate = bitrate;
    ctx.rcMaxRate = bitrate;
    ctx.rcBufferSize = Number(bitrate) / 2; // half a second of VBV: caps keyframe bursts
    ctx.gopSize = fps * 10; // periodic refresh for late joiners; PLI forces one sooner
    ctx.maxBFrames = 0;
    ctx.threadCount = 1;
    // Options one by one, never a Dictionary to open2 (heap corruption at exit, see NOTES-webrtc.md).
    if (codec === 'VP8') {
      ctx.setOption('deadline', 'realtime');
      ctx.setOption('cpu-used', '8');
      ctx.setOption('lag-in-frames', '0');
      ctx.setOption('error-resilient', 'default');
      ctx.setOption('auto-alt-ref', '0');
      ctx.setOption('static-thresh', '0');
    } else if (nvenc) {
      // Lowest-latency preset and tuning; without a global header NVENC repeats SPS/PPS before every IDR.
      ctx.setOption('preset', 'p1');
      ctx.setOption('tune', 'ull');
      ctx.setOption('zerolatency', '1');
      ctx.setOption('delay', '0');
      ctx.setOption('profile', 'baseline');
      ctx.setOption('level', '3.1');
      ctx.setOption('forced-idr', '1');
      ctx.setOption('rc', 'cbr');
    } else {
      ctx.setOption('preset', 'ultrafast');
      ctx.setOption('tune', 'zerolatency');
      ctx.setOption('profile', 'baseline');
      ctx.setOption('forced-idr', '1');
      // Constrained baseline 3.1 matches the negotiated profile-level-id=42e01f; SPS/PPS repeat before each IDR.
      ctx.setOption('x264-params', 'level=3.1:repeat-headers=1:annexb=1:sliced-threads=0:nal-hrd=none');
    }
    const ret = await ctx.open2(enc);
    if (ret < 0) {
      ctx.freeContext();
      throw new CodecUnavailableError(`Cannot open ${codec} encoder: ${new FFmpegError(ret).message}`);
    }
    return new VideoEncoder(ctx, options);
  }

  /** Encode one RGB24 picture (must be the configured size). `pts90k` should increase; it is forced to. */
  encode(image: RgbImage, pts90k: number, forceKeyframe: boolean): Promise<EncodedPicture[]> {
    return this.queue.run(() => this.encodeNow(image, pts90k, forceKeyframe));
  }

  private async encodeNow(image: RgbImage, pts90k: number, forceKeyframe: boolean): Promise<EncodedPicture[]> {
    if (this.closed) return [];
    const { width, height } = this.options;
    if (image.width !== width || image.height !== height) {
      throw new RangeError(`encoder expects ${width}x${height}, got ${image.width}x${image.height}`);
    }
    const rgb = Frame.fromVideoBuffer(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
      width,
      height,
      format: AV_PIX_FMT_RGB24,
    });
    let yuvBuf: Buffer;
    try {
      yuvBuf = await this.scaler.toBuffer(rgb, { format: 'yuv420p' });
    } finally {
      rgb.free();
    }
    if (this.closed) return [];
    const yuv = Frame.fromVideoBuffer(yuvBuf, { width, height, format: AV_PIX_FMT_YUV420P });
    let pts = BigInt(Math.floor(pts90k));
    if (pts <= this.lastPts) pts = this.lastPts + 1n;
    this.lastPts = pts;
    yuv.pts = pts;
    yuv.pictType = forceKeyframe ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    const out: EncodedPicture[] = [];
    try {
      const sent = await this.ctx.sendFrame(yuv);
      FFmpegError.throwIfError(sent, 'encode');
      for (;;) {
        if (this.closed) break;
        this.packet.unref();
        const ret = await this.ctx.receivePacket(this.packet);
        if (ret === AVERROR_EAGAIN || ret === AVERROR_EOF) break;
        FFmpegError.throwIfError(ret, 'encode');
        const data = this.packet.data;
        if (data && data.length > 0) out.push({ data: Buffer.from(data), keyframe: this.packet.isKeyframe });
      }
    } finally {
      yuv.free();
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.idle();
    this.packet.free();
    this.scaler.close();
    this.ctx.freeContext();
    release('encoders');
  }
}
