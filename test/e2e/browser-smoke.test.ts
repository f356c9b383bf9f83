import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_FLAGS, launchBrowser, screenshot } from '../browser/browser';

/**
 * The browser tier works: Debian's Chromium starts headless through playwright-core, loads a page from a
 * local server, runs its script, takes a click, renders Chinese (fonts-wqy-microhei) and leaves a
 * screenshot as a test artifact (test-results/screenshots/). The hosted checkout tests build on this.
 */
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Smoke</title>
<style>body{font:16px system-ui,sans-serif;margin:2rem}button{font-size:1rem;padding:.5rem 1rem}</style></head>
<body><h1>Payplane browser smoke</h1>
<label for="name">Name</label> <input id="name" autocomplete="off">
<button type="button" id="pay">Pay</button>
<p id="result" role="status"></p>
<script>
document.getElementById('pay').addEventListener('click', async () => {
  const res = await fetch('/echo', { method: 'POST', body: document.getElementById('name').value });
  document.getElementById('result').textContent = '已支付 Paid by ' + (await res.text()) + ' (' + navigator.language + ')';
});
</script></body></html>`;

let server: Server;
let base: string;
let browser: Browser;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/echo') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => res.writeHead(200, { 'Content-Type': 'text/plain' }).end(body));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

describe('browser (Chromium through playwright-core)', () => {
  it('opens a page, types, clicks, sees the script run and saves a screenshot', async () => {
    // Prepare
    const context = await browser.newContext({ locale: 'zh-CN' });
    const page = await context.newPage();
    try {
      // Act
      await page.goto(`${base}/`);
      await page.getByLabel('Name').fill('Li Lei');
      await page.getByRole('button', { name: 'Pay' }).click();
      // Assess
      await expect.poll(() => page.getByRole('status').textContent()).toBe('已支付 Paid by Li Lei (zh-CN)');
      const path = await screenshot(page, 'browser-smoke');
      expect(existsSync(path) && statSync(path).size).toBeGreaterThan(1000);
      expect(readFileSync(path).subarray(1, 4).toString()).toBe('PNG');
    } finally {
      await context.close();
    }
  });

  it('runs with our flags and a fresh temporary profile (--user-data-dir)', async () => {
    const page = await browser.newPage();
    await page.goto('chrome://version');
    const commandLine = (await page.locator('#command_line').textContent()) ?? '';
    const profile = (await page.locator('#profile_path').textContent()) ?? '';
    await page.close();
    for (const flag of CHROMIUM_FLAGS) expect(commandLine.split(/\s+/)).toContain(flag);
    expect(commandLine).toMatch(/--user-data-dir=\S*playwright_chromiumdev_profile-/);
    expect(profile).toMatch(/playwright_chromiumdev_profile-\w+/);
  });

  it('renders a data: URL (no server at all)', async () => {
    const page = await browser.newPage();
    await page.goto('data:text/html,<button onclick="this.textContent=\'done\'">go</button>');
    await page.getByRole('button', { name: 'go' }).click();
    await expect.poll(() => page.getByRole('button').textContent()).toBe('done');
    await page.close();
  });
});
