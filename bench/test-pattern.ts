// A moving synthetic RGB picture for codec benchmarks and tests when no photo is at hand: gradients plus a
// moving square, so encoders see both texture and motion.
import type { RgbImage } from '../frame/video-frame.js';

export function makeTestPattern(width: number, height: number, index: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  const sx = (index * 7) % width;
  const sy = (index * 3) % height;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      const inSquare = x >= sx && x < sx + width / 6 && y >= sy && y < sy + height / 6;
      data[o] = inSquare ? 240 : (x * 255) / width;
      data[o + 1] = inSquare ? 40 : (y * 255) / height;
      data[o + 2] = ((x + y + index * 4) & 255) >> 1;
    }
  }
  return { width, height, data };
}
