// "Require or skip" for what a test needs beyond npm (Chromium, GStreamer, Redis, the default model). Locally a
// missing one skips its tests with a message; under CI=true it fails the run, so a CI machine without it cannot
// go green: one failing test names what is missing and how to install it, and the tests that need it skip.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { findChromium } from '../../bench/chromium-path.js';
import { DEFAULT_MODEL } from './server-harness.js';

/** CI=true (or any value but false/0), as CI services set it. */
export const ON_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false' && process.env.CI !== '0';

const reported = new Set<string>();

/**
 * The `skip` option for tests that need `what`: false when it is there (`missing` is false), else the reason.
 * Under CI the reason is also a failed test, once per file and dependency.
 */
export function requireOrSkip(what: string, missing: string | false): string | false {
  if (missing === false) return false;
  if (ON_CI && !reported.has(what)) {
    reported.add(what);
    test(`test dependency: ${what}`, () => {
      throw new Error(`${missing} (CI=true: a missing test dependency fails the run; .ci/run installs it)`);
    });
  }
  return missing;
}

/** Chromium as the README says it is found (SDS_CHROMIUM, then PATH), and the skip option of tests that need it. */
export function requireChromium(): { executablePath: string; skip: string | false } {
  const found = findChromium();
  if ('path' in found) return { executablePath: found.path, skip: false };
  return { executablePath: '', skip: requireOrSkip('Chromium', found.missing) };
}

/** The skip option of tests that need the embedded default model (or the one SDS_TEST_MODEL names). */
export function requireDefaultModel(): string | false {
  const present = existsSync(path.join(DEFAULT_MODEL, 'manifest.json'));
  return requireOrSkip(
    'the default model',
    present ? false : `${DEFAULT_MODEL}/manifest.json is missing (train/export it first, or set SDS_TEST_MODEL)`,
  );
}
