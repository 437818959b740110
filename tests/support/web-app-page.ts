// Driving the web app's page (client/) in the browser tests: open it, press Start, wait for restyled video.
import type { Page } from 'playwright-core';

// Callbacks passed to page.evaluate run in the page; this file compiles without the DOM lib.
declare const document: any;

/** Open the web app at `url`, wait until its model description has loaded (its name shows), and press Start. */
export async function openAndStart(page: Page, url: string, timeoutMs = 10_000): Promise<void> {
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('model-name').textContent !== '', undefined, { timeout: timeoutMs });
  await page.click('#start');
}

/**
 * Resolves once the output <video> plays (and has presented `minFrames` frames); otherwise throws with what the
 * page's notice says and `serverLog()`, the log of the server it talks to.
 */
export async function awaitRestyledVideo(page: Page, o: { timeoutMs: number; minFrames?: number; serverLog: () => string }): Promise<void> {
  await page
    .waitForFunction(
      (minFrames: number) => {
        const v = document.getElementById('output');
        return v.readyState >= 2 && v.videoWidth > 0 && !v.paused && v.getVideoPlaybackQuality().totalVideoFrames >= minFrames;
      },
      o.minFrames ?? 0,
      { timeout: o.timeoutMs },
    )
    .catch(async (err: Error) => {
      const title = await page.textContent('#notice-title').catch(() => '');
      const detail = await page.textContent('#notice-detail').catch(() => '');
      throw new Error(
        `no restyled video within ${o.timeoutMs / 1000} s (page says “${title}” — ${detail})\n${err.message}\nserver log:\n${o.serverLog()}`,
      );
    });
}
