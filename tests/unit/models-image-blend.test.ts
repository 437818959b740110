// Consistency's image warp and blend as a GridSample graph gives the host loop's pixels away from the border
// (where the two clamp differently), and the worker path takes it when asked.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ImageBlendGraph } from '../../models/image-blend-graph.js';
import { blendWarpedImage } from '../../realtime/latent-cache.js';
import type { RgbImage } from '../../frame/video-frame.js';

const graphs: ImageBlendGraph[] = [];
after(async () => {
  await Promise.all(graphs.map((g) => g.release()));
});

function image(width: number, height: number, seed: number): RgbImage {
  return { width, height, data: Uint8Array.from({ length: width * height * 3 }, (_, i) => (Math.sin(i * 0.01 * seed) * 120 + 128) | 0) };
}

test('the graph blends the warped previous image in as the host loop does, inside the frame', async () => {
  const graph = await ImageBlendGraph.load({ provider: 'cpu', fallbackToCpu: false, intraOpThreads: 1 });
  graphs.push(graph);
  const [W, H, fw, fh] = [64, 48, 16, 12];
  const current = image(W, H, 1);
  const previous = image(W, H, 2);
  const flow = { width: fw, height: fh, data: Float32Array.from({ length: fw * fh * 2 }, (_, i) => Math.sin(i * 0.37) * 0.6) };
  const mask = Float32Array.from({ length: fw * fh }, (_, i) => (i % 5) / 4);
  const out = await graph.blend(current, previous, flow, mask, 0.6);
  const host = { ...current, data: current.data.slice() };
  blendWarpedImage(host, previous, flow, mask, 0.6);
  assert.notDeepEqual(host.data, current.data, 'the blend changes the frame');
  let compared = 0;
  // Cells whose source block stays inside the frame (flow ≤ 0.6 cells = 2.4 px, so 1 cell of margin).
  for (let y = 4; y < H - 4; y++)
    for (let x = 4; x < W - 4; x++)
      for (let c = 0; c < 3; c++, compared++) {
        const i = (y * W + x) * 3 + c;
        assert.ok(Math.abs(out.data[i]! - host.data[i]!) <= 1, `(${x}, ${y}) channel ${c}: graph ${out.data[i]} host ${host.data[i]}`);
      }
  assert.ok(compared > 0);
  assert.deepEqual(current.data, image(W, H, 1).data, 'the input frame is left as it was');
});
