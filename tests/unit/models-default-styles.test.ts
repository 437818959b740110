// The embedded model follows its conditioning: restyling a held-out photo (never trained on) in style S
// must look more like S's target than like any other style's target. A model that ignored its style
// input would produce one output for all styles and fail for all but at most one of them.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadPhoto } from '../../bench/loopback-client.js';
import { ModelRuntime } from '../../realtime/model-runtime.js';
import { PACKAGE_ROOT } from '../../server/config.js';
import { ssim } from '../support/image-metrics.js';

const MODEL = path.join(PACKAGE_ROOT, 'models', 'default');
const TESTDATA = path.join(MODEL, 'testdata');

test("each style restyles a held-out photo closer to its own target than to any other style's", async () => {
  const photo = await loadPhoto(path.join(TESTDATA, 'heldout.png'));
  const rt = await ModelRuntime.load({ modelDir: MODEL, intraOpThreads: 2 });
  try {
    const styles = rt.info.styles;
    assert.ok(styles.length >= 4, 'at least four styles');
    const targets = new Map<string, Awaited<ReturnType<typeof loadPhoto>>>();
    for (const s of styles) {
      const file = path.join(TESTDATA, 'targets', `${s}.png`);
      assert.ok(existsSync(file), `target for ${s}`);
      targets.set(s, await loadPhoto(file));
    }
    const rows: string[] = [];
    for (const style of styles) {
      const { image } = await rt.restyle({
        streamId: 'styles',
        image: { ...photo, data: photo.data.slice() },
        style,
        prompt: '',
        strength: rt.info.defaults.strength,
        steps: 1,
        seed: 42,
        consistency: 0,
      });
      const scores = styles.map((t) => [t, ssim(image, targets.get(t)!)] as const);
      rows.push(`${style}: ${scores.map(([t, v]) => `${t} ${v.toFixed(3)}`).join(', ')}`);
      const own = scores.find(([t]) => t === style)![1];
      const bestOther = Math.max(...scores.filter(([t]) => t !== style).map(([, v]) => v));
      assert.ok(
        own > bestOther,
        `style ${style}: SSIM to own target ${own.toFixed(3)} vs best other ${bestOther.toFixed(3)}\n${rows.join('\n')}`,
      );
    }
  } finally {
    await rt.close();
  }
});
