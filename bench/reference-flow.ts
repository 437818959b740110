// The benchmark's independent flow: OpenCV (Debian's python3-opencv) run by bench/reference_flow.py.
// Metrics that judge our own flow-guided output must not use our own flow, or a wrong flow would
// grade itself.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { FlowField, GrayImage } from '../realtime/optical-flow.js';

export type ReferenceFlowMethod = 'dis-medium' | 'dis-ultrafast' | 'farneback';

export interface ReferenceFlows {
  forward: FlowField[];
  backward: FlowField[];
  method: ReferenceFlowMethod;
  opencv: string;
  medianMs: number;
}

const SCRIPT = fileURLToPath(new URL('../../bench/reference_flow.py', import.meta.url));
const PYTHON = process.env.SDS_PYTHON ?? '/usr/bin/python3';

export class ReferenceFlowUnavailableError extends Error {
  constructor(detail: string) {
    super(`the reference optical flow needs Debian's python3-opencv (apt-get install python3-opencv): ${detail}`);
    this.name = 'ReferenceFlowUnavailableError';
  }
}

/** Forward (t → t+1) and backward (t+1 → t) flow for every consecutive pair, by OpenCV. */
export async function referenceFlows(frames: GrayImage[], method: ReferenceFlowMethod = 'dis-medium'): Promise<ReferenceFlows> {
  const { width, height } = frames[0]!;
  const dir = await mkdtemp(path.join(tmpdir(), 'sds-flow-'));
  try {
    const input = new Uint8Array(width * height * frames.length);
    frames.forEach((f, t) => input.set(Uint8ClampedArray.from(f.data), t * width * height));
    await writeFile(path.join(dir, 'in.gray'), input);
    let stdout: string;
    try {
      ({ stdout } = await promisify(execFile)(PYTHON, [
        SCRIPT,
        '--method',
        method,
        '--width',
        String(width),
        '--height',
        String(height),
        '--input',
        path.join(dir, 'in.gray'),
        '--output',
        path.join(dir, 'out.f32'),
      ]));
    } catch (err) {
      throw new ReferenceFlowUnavailableError((err as Error).message.split('\n').slice(-2).join(' '));
    }
    const info = JSON.parse(stdout.trim().split('\n').pop()!) as { opencv: string; median_ms: number };
    const raw = await readFile(path.join(dir, 'out.f32'));
    const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const size = width * height * 2;
    const pairs = frames.length - 1;
    const field = (k: number): FlowField => ({ width, height, data: all.slice(k * size, (k + 1) * size) });
    return {
      forward: Array.from({ length: pairs }, (_, k) => field(k)),
      backward: Array.from({ length: pairs }, (_, k) => field(pairs + k)),
      method,
      opencv: info.opencv,
      medianMs: info.median_ms,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
