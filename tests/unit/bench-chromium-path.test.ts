import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { findChromium } from '../../bench/chromium-path.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sds-chromium-path-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fakeBrowser(sub: string, name: string): string {
  const file = path.join(dir, sub, name);
  writeFileSync(file, '#!/bin/sh\n', { flag: 'w' });
  chmodSync(file, 0o755);
  return file;
}

test('SDS_CHROMIUM wins over PATH, and a wrong one is named rather than silently replaced', () => {
  mkdirSync(path.join(dir, 'a'));
  const onPath = fakeBrowser('a', 'chromium');
  const chosen = fakeBrowser('a', 'my-chrome');
  assert.deepEqual(findChromium({ SDS_CHROMIUM: chosen, PATH: path.join(dir, 'a') }), { path: chosen });
  assert.deepEqual(findChromium({ PATH: path.join(dir, 'a') }), { path: onPath });
  const wrong = findChromium({ SDS_CHROMIUM: path.join(dir, 'nope'), PATH: path.join(dir, 'a') });
  assert.ok('missing' in wrong && wrong.missing.includes('SDS_CHROMIUM='), JSON.stringify(wrong));
});

test('on PATH, chromium comes before chromium-browser and google-chrome, whichever directory holds it', () => {
  mkdirSync(path.join(dir, 'b'));
  mkdirSync(path.join(dir, 'c'));
  const chrome = fakeBrowser('b', 'google-chrome');
  const chromiumBrowser = fakeBrowser('c', 'chromium-browser');
  const PATH = [path.join(dir, 'b'), path.join(dir, 'c')].join(path.delimiter);
  assert.deepEqual(findChromium({ PATH }), { path: chromiumBrowser });
  assert.deepEqual(findChromium({ PATH: path.join(dir, 'b') }), { path: chrome });
  const none = findChromium({ PATH: path.join(dir, 'nothing-here') });
  assert.ok('missing' in none && /chromium, chromium-browser, google-chrome/.test(none.missing), JSON.stringify(none));
});
