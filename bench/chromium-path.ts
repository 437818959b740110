// Where Chromium is: SDS_CHROMIUM if set, else the first of chromium, chromium-browser, google-chrome,
// google-chrome-stable on PATH (Debian, Ubuntu and Google's package names). The browser benchmark and the
// browser tests look it up the same way, as the README says.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export const CHROMIUM_NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'] as const;

export type ChromiumLookup = { path: string } | { missing: string };

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The Chromium to run, or why there is none (a message naming SDS_CHROMIUM and the names tried on PATH). */
export function findChromium(env: NodeJS.ProcessEnv = process.env): ChromiumLookup {
  const chosen = env.SDS_CHROMIUM;
  if (chosen !== undefined && chosen !== '') {
    return executable(chosen) ? { path: chosen } : { missing: `SDS_CHROMIUM=${chosen} is not an executable file` };
  }
  const dirs = (env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const name of CHROMIUM_NAMES) {
    for (const dir of dirs) {
      const file = path.join(dir, name);
      if (executable(file)) return { path: file };
    }
  }
  return {
    missing: `Chromium not found (SDS_CHROMIUM is unset and none of ${CHROMIUM_NAMES.join(', ')} is on PATH): install Debian's chromium package`,
  };
}
