// The web app from another machine on the LAN: a browser gives a page the camera only in a secure context,
// which http://<LAN address> is not. Two test network namespaces on one link stand for two machines: in the
// server's (10.77.0.1), `sds cert --host 10.77.0.1` makes a certificate and `sds serve --tls-cert/--tls-key`
// serves with it; in the other (10.77.0.2), headless Chromium, trusting exactly that certificate's key, opens
// https://10.77.0.1:8443, starts the fake camera and gets its video restyled back over WebRTC.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { chromiumArgs } from '../../bench/browser-bench.js';
import { findSourceImage, writePanningClip } from '../../bench/y4m-clip.js';
import { PACKAGE_ROOT } from '../../server/config.js';
import { namespaceSkip, TestNetwork } from '../support/netns.js';
import { requireChromium } from '../support/test-dependency.js';

// Callbacks passed to page.evaluate run in the page; this file compiles without the DOM lib.
declare const document: any;
declare const window: any;

const { executablePath: CHROMIUM, skip: noChromium } = requireChromium();
const SDS_BIN = path.join(PACKAGE_ROOT, 'dist', 'bin', 'sds.js');
const LAN_IP = '10.77.0.1';
const PORT = 8443;

const skip = noChromium || namespaceSkip();

describe('the web app over HTTPS at a LAN address', { skip, timeout: 120_000 }, () => {
  const net = new TestNetwork();
  let workDir = '';
  let context: BrowserContext | undefined;
  let page: Page;
  let serverLog = '';

  before(async () => {
    workDir = mkdtempSync(path.join(tmpdir(), 'sds-https-'));
    const ns = net.namespace('srv');
    const pc = net.namespace('pc');
    net.link({ ns, ifname: 'eth0', cidr: `${LAN_IP}/24` }, { ns: pc, ifname: 'eth0', cidr: '10.77.0.2/24' });

    const made = spawnSync(process.execPath, [SDS_BIN, 'cert', '--host', LAN_IP, '--out', workDir], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const certFile = path.join(workDir, 'sds-cert.pem');
    const server = net.spawn(
      ns,
      process.execPath,
      [
        SDS_BIN,
        'serve',
        '--port',
        String(PORT),
        '--intra-op-threads',
        '1',
        '--tls-cert',
        certFile,
        '--tls-key',
        path.join(workDir, 'sds-key.pem'),
      ],
      { cwd: PACKAGE_ROOT },
    );
    const serving = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sds serve did not start within 60 s:\n${serverLog}`)), 60_000);
      const keep = (chunk: Buffer): void => {
        serverLog = (serverLog + chunk.toString()).slice(-8000);
        if (/"msg":"serving"/.test(serverLog)) {
          clearTimeout(timer);
          resolve();
        }
      };
      server.stdout!.on('data', keep);
      server.stderr!.on('data', keep);
      server.once('exit', (code) => reject(new Error(`sds serve exited (${code}):\n${serverLog}`)));
    });
    const clip = path.join(workDir, 'camera.y4m');
    await Promise.all([serving, writePanningClip(clip, { source: findSourceImage(PACKAGE_ROOT), frames: 60, fps: 30 })]);

    // Chromium runs on the other "machine"; it trusts exactly the certificate's key (as a user who accepted it would).
    const spki = createHash('sha256')
      .update(new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' }))
      .digest('base64');
    const wrapper = path.join(workDir, 'chromium-in-netns');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${pc} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    context = await chromium.launchPersistentContext(path.join(workDir, 'profile'), {
      executablePath: wrapper,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: [...chromiumArgs(clip), `--ignore-certificate-errors-spki-list=${spki}`],
    });
    page = context.pages()[0] ?? (await context.newPage());
  });

  after(async () => {
    await context?.close().catch(() => {});
    await net.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  test('the page is a secure context, gets the camera and shows it restyled', async () => {
    await page.goto(`https://${LAN_IP}:${PORT}/`);
    assert.equal(await page.evaluate(() => window.isSecureContext), true, 'https://<LAN address> is a secure context');
    await page.waitForFunction(() => document.getElementById('model-name').textContent !== '', undefined, { timeout: 10_000 });
    await page.click('#start');
    await page
      .waitForFunction(
        () => {
          const v = document.getElementById('output');
          return v.readyState >= 2 && v.videoWidth > 0 && !v.paused && v.getVideoPlaybackQuality().totalVideoFrames >= 10;
        },
        undefined,
        { timeout: 30_000 },
      )
      .catch(async (err: Error) => {
        const notice = await page.textContent('#notice-detail').catch(() => '');
        throw new Error(`no restyled video within 30 s (page: ${notice})\n${err.message}\nserver log:\n${serverLog}`);
      });
    // Restyled, not echoed: the output differs from the camera image it shows beside it.
    const difference = await page.evaluate(() => {
      const sample = (id: string): number[] => {
        const canvas = document.createElement('canvas');
        canvas.width = 32;
        canvas.height = 24;
        const ctx = canvas.getContext('2d', { willReadFrequently: true });
        ctx.drawImage(document.getElementById(id), 0, 0, 32, 24);
        return Array.from(ctx.getImageData(0, 0, 32, 24).data as ArrayLike<number>);
      };
      const a = sample('input');
      const b = sample('output');
      return a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / a.length;
    });
    assert.ok(difference > 6, `the output differs from the camera image (mean abs difference ${difference.toFixed(1)})`);
  });
});
