// Temporal consistency's image-space step as an ONNX graph, for execution providers where the host is the
// bottleneck: the previous output warped into the current frame along the small-grid flow (GridSample) and
// blended in where the mask trusts it, uint8 frames in and out. The host computes the flow on the small grid
// (cheap) and passes it as it is; this is realtime/latent-cache.ts blendWarpedImage's arithmetic, per pixel.
import ort from 'onnxruntime-node';
import type { RgbImage } from '../frame/video-frame.js';
import { initializer, node, OnnxType, ProtoWriter, valueInfo } from './onnx-protobuf.js';
import { OnnxComponent, type SessionConfig } from './onnx-component.js';

/** GridSample arrived in opset 16. */
const OPSET = 16;

function tensorInit(
  name: string,
  type: 'float' | 'int64',
  values: readonly number[],
  dims: readonly number[] = [values.length],
): ProtoWriter {
  return initializer(name, type, dims, values);
}

/** The blend graph's bytes: inputs current/previous uint8 [1,H,W,3], flow float [1,fh,fw,2] (grid units), mask [1,1,fh,fw], weight [1]. */
export function imageBlendModel(): Uint8Array {
  const n: ProtoWriter[] = [];
  const add = (op: string, inputs: string[], output: string, attributes: Parameters<typeof node>[4] = {}): string => {
    n.push(node(op, inputs, [output], output, attributes));
    return output;
  };
  const nchw = { perm: { ints: [0, 3, 1, 2] } };
  const nearest = {
    mode: { string: 'nearest' },
    coordinate_transformation_mode: { string: 'asymmetric' },
    nearest_mode: { string: 'floor' },
  };
  // Sizes: the frame's H, W and the flow grid's; block = frame / grid, in pixels.
  const hw = add('Gather', [add('Shape', ['current'], 'shape'), 'idx12'], 'hw');
  const hwF = add('Cast', [hw], 'hw_f', { to: { int: OnnxType.float } });
  const flow = add('Transpose', ['flow'], 'flow_nchw', nchw);
  const gridHw = add('Cast', [add('Gather', [add('Shape', [flow], 'flow_shape'), 'idx23'], 'grid_hw')], 'grid_hw_f', {
    to: { int: OnnxType.float },
  });
  const block = add('Gather', [add('Div', [hwF, gridHw], 'block_hw'), 'idx10'], 'block_wh');
  // Flow and mask repeated over each grid cell's block of pixels (as the host's block loop does).
  const flowUp = add('Resize', [flow, '', '', add('Concat', ['one_two', hw], 'sizes2', { axis: { int: 0 } })], 'flow_up', nearest);
  const disp = add('Mul', [flowUp, add('Reshape', [block, 'shape_1c11'], 'block_1c11')], 'disp');
  const maskUp = add('Resize', ['mask', '', '', add('Concat', ['one_one', hw], 'sizes1', { axis: { int: 0 } })], 'mask_up', nearest);
  // Source position of every pixel, normalised for GridSample (align_corners: -1 and 1 are the edge pixels' centres).
  const coords = (axis: 0 | 1, name: string, shape: string): string => {
    const size = add('Gather', [hwF, axis === 0 ? 'idx1' : 'idx0'], `${name}_size`);
    const range = add('Reshape', [add('Range', ['zero', size, 'one'], `${name}_range`), shape], `${name}_base`);
    const moved = add(
      'Add',
      [add('Slice', [disp, axis === 0 ? 'from0' : 'from1', axis === 0 ? 'from1' : 'from2', 'from1'], `${name}_disp`), range],
      `${name}_src`,
    );
    const perPixel = add('Div', ['two', add('Sub', [size, 'one'], `${name}_last`)], `${name}_norm`);
    return add('Sub', [add('Mul', [moved, perPixel], `${name}_scaled`), 'one'], `${name}_grid`);
  };
  const grid = add(
    'Transpose',
    [add('Concat', [coords(0, 'x', 'shape_111w'), coords(1, 'y', 'shape_11h1')], 'grid_nchw', { axis: { int: 1 } })],
    'grid',
    {
      perm: { ints: [0, 2, 3, 1] },
    },
  );
  const asFloat = (input: string): string =>
    add('Transpose', [add('Cast', [input], `${input}_f`, { to: { int: OnnxType.float } })], `${input}_nchw`, nchw);
  const warped = add('GridSample', [asFloat('previous'), grid], 'warped', {
    mode: { string: 'bilinear' },
    padding_mode: { string: 'border' },
    align_corners: { int: 1 },
  });
  const cur = asFloat('current');
  const k = add('Mul', [maskUp, 'weight'], 'k');
  const blended = add('Add', [cur, add('Mul', [add('Sub', [warped, cur], 'diff'), k], 'step')], 'blended');
  // Round half up, as the host's (x + 0.5) | 0; both ends of the blend are in 0..255.
  const rounded = add('Clip', [add('Floor', [add('Add', [blended, 'half'], 'biased')], 'rounded'), 'zero', 'max'], 'clamped');
  n.push(
    node('Cast', [add('Transpose', [rounded], 'nhwc', { perm: { ints: [0, 2, 3, 1] } })], ['blended_image'], 'to_bytes', {
      to: { int: OnnxType.uint8 },
    }),
  );

  const graph = new ProtoWriter();
  for (const x of n) graph.bytes(1, x);
  graph.string(2, 'sds_image_blend');
  const inits = [
    tensorInit('idx12', 'int64', [1, 2]),
    tensorInit('idx23', 'int64', [2, 3]),
    tensorInit('idx10', 'int64', [1, 0]),
    tensorInit('idx0', 'int64', [0], []),
    tensorInit('idx1', 'int64', [1], []),
    tensorInit('from0', 'int64', [0]),
    tensorInit('from1', 'int64', [1]),
    tensorInit('from2', 'int64', [2]),
    tensorInit('one_two', 'int64', [1, 2]),
    tensorInit('one_one', 'int64', [1, 1]),
    tensorInit('shape_1c11', 'int64', [1, 2, 1, 1]),
    tensorInit('shape_111w', 'int64', [1, 1, 1, -1]),
    tensorInit('shape_11h1', 'int64', [1, 1, -1, 1]),
    tensorInit('zero', 'float', [0], []),
    tensorInit('one', 'float', [1], []),
    tensorInit('two', 'float', [2], []),
    tensorInit('half', 'float', [0.5], []),
    tensorInit('max', 'float', [255], []),
  ];
  for (const i of inits) graph.bytes(5, i);
  graph
    .bytes(11, valueInfo('current', OnnxType.uint8, [1, 'height', 'width', 3]))
    .bytes(11, valueInfo('previous', OnnxType.uint8, [1, 'height', 'width', 3]))
    .bytes(11, valueInfo('flow', OnnxType.float, [1, 'grid_height', 'grid_width', 2]))
    .bytes(11, valueInfo('mask', OnnxType.float, [1, 1, 'grid_height', 'grid_width']))
    .bytes(11, valueInfo('weight', OnnxType.float, [1]))
    .bytes(12, valueInfo('blended_image', OnnxType.uint8, [1, 'height', 'width', 3]));
  // ModelProto: ir_version 1 (8: opset 16's IR), opset_import 8, graph 7.
  return new ProtoWriter().varint(1, 8).bytes(8, new ProtoWriter().string(1, '').varint(2, OPSET)).bytes(7, graph).finish();
}

/** A small-grid flow field: (u, v) per grid cell in grid pixels, interleaved. */
export interface GridFlow {
  width: number;
  height: number;
  data: Float32Array;
}

/** The blend graph loaded on the model's execution provider. */
export class ImageBlendGraph {
  private constructor(private readonly component: OnnxComponent) {}

  static async load(config: SessionConfig): Promise<ImageBlendGraph> {
    return new ImageBlendGraph(await OnnxComponent.load('image-blend (built in)', config, imageBlendModel()));
  }

  get provider(): SessionConfig['provider'] {
    return this.component.provider;
  }

  /** `current` with `previous` warped along `flow` blended in at weight × mask (per grid cell); a new image. */
  async blend(current: RgbImage, previous: RgbImage, flow: GridFlow, mask: Float32Array, weight: number): Promise<RgbImage> {
    const { width, height } = current;
    const feeds = {
      current: new ort.Tensor('uint8', current.data, [1, height, width, 3]),
      previous: new ort.Tensor('uint8', previous.data, [1, height, width, 3]),
      flow: new ort.Tensor('float32', flow.data, [1, flow.height, flow.width, 2]),
      mask: new ort.Tensor('float32', mask, [1, 1, flow.height, flow.width]),
      weight: new ort.Tensor('float32', Float32Array.of(weight), [1]),
    };
    const out = (await this.component.session.run(feeds, ['blended_image']))['blended_image']!;
    return { width, height, data: out.data as Uint8Array };
  }

  async release(): Promise<void> {
    await this.component.release();
  }
}
