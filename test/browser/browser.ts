import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type LaunchOptions, type Page } from 'playwright-core';
import { PROJECT_ROOT } from '../../local/assembly';

/**
 * The browser for tests that drive real pages (the hosted checkout): Debian's Chromium through
 * playwright-core. `npx playwright install` cannot download browsers here, so the executable is the
 * system one (.ci/run installs it with apt-get; `PAYPLANE_CHROMIUM` points elsewhere, e.g. on a Mac).
 *
 * Every launch gets a fresh, throw-away profile: Playwright creates a new temporary --user-data-dir for
 * each launch() and deletes it on close (it refuses a --user-data-dir argument, which would share state
 * between runs).
 */

export const CHROMIUM_PATH = process.env.PAYPLANE_CHROMIUM ?? '/usr/bin/chromium';

/** Headless, no sandbox (containers run as root), and nothing that phones home: the network is closed. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const SCREENSHOT_DIR = join(PROJECT_ROOT, 'test-results', 'screenshots');

export async function launchBrowser(options: LaunchOptions = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `No Chromium at ${CHROMIUM_PATH}. Install it with \`apt-get update && apt-get install -y chromium\` (what .ci/run does), or set PAYPLANE_CHROMIUM to a Chromium/Chrome executable.`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    timeout: 30_000,
    ...options,
    args: [...CHROMIUM_FLAGS, ...(options.args ?? [])],
  });
}

/** Saves a full-page screenshot as test-results/screenshots/<name>.png (a CI artifact) and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'screenshot';
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${safe}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
