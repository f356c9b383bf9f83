import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot } from '../browser/browser';
import { call, cloud, newMerchant } from './support';

/**
 * Issue 13 §3: the API reference at /docs, from the template's public route, in Chromium: every /v1 route of the
 * spec is on the page, the page loads nothing from another origin, and its strict CSP refuses nothing it needs.
 */
const spec = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8')) as { paths: Record<string, Record<string, unknown>> };
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const routes = Object.entries(spec.paths)
  .filter(([path]) => path.startsWith('/v1/'))
  .flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((m) => ({ method: m, path })));

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe('GET /docs', () => {
  it('serves the page with a strict CSP, and the spec it renders is GET /v1/openapi.json', async () => {
    const res = await call('GET', '/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*(unsafe|\*|https?:)/);
    expect(res.text).toContain(`spec-url="${new URL(cloud().url).pathname.replace(/\/$/, '')}/v1/openapi.json"`);
    const served = await call('GET', '/v1/openapi.json');
    expect(served.body).toEqual(spec);
  });

  it('renders every /v1 route of the spec in Chromium, with the key form of its try-it console, loading nothing from elsewhere', async () => {
    // Prepare
    expect(routes.length).toBeGreaterThan(5);
    const origin = new URL(cloud().url).origin;
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const foreign: string[] = [];
    const refused: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) foreign.push(r.url());
    });
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) refused.push(m.text());
    });
    try {
      // Act
      await page.goto(`${cloud().url}/docs`);
      // Assess: each route's path, in RapiDoc's shadow DOM, once it has rendered the spec.
      const pageText = () =>
        page.evaluate<string>(`(() => {
          const walk = (root) => [...root.querySelectorAll('*')].map((el) => (el.shadowRoot ? walk(el.shadowRoot) : '') + (el.childElementCount === 0 ? ' ' + el.textContent : '')).join(' ');
          return walk(document);
        })()`);
      await expect.poll(pageText, { timeout: 30_000 }).toContain('/v1/orders/{id}/confirm');
      const text = await pageText();
      const missing = routes.filter(({ path }) => !text.includes(path));
      expect(missing, 'routes of the spec not on the page').toEqual([]);
      expect(text).toContain('Authorization: Bearer sk_test_');
      await screenshot(page, 'api-docs');
      expect(foreign, 'requests to other origins (a CDN, fonts)').toEqual([]);
      expect(refused, 'CSP refusals').toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('its try-it console calls the API with the key typed in, and shows the answer and a curl line', async () => {
    // Prepare
    const merchant = await newMerchant('Docs try-it merchant');
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    try {
      await page.goto(`${cloud().url}/docs`);
      const doc = page.locator('rapi-doc');
      // Act: the key in the authentication form, then GET /v1/balance's TRY.
      await doc.getByPlaceholder('api-token').fill(merchant.key);
      await doc.getByRole('button', { name: 'SET' }).click();
      await doc.getByText('/v1/balance', { exact: true }).first().click();
      await doc.getByRole('button', { name: 'TRY' }).first().click();
      // Assess
      await expect.poll(() => doc.getByText('curl -X GET', { exact: false }).count(), { timeout: 15_000 }).toBeGreaterThan(0);
      await expect.poll(() => doc.getByText('"object": "balance"', { exact: false }).count(), { timeout: 15_000 }).toBeGreaterThan(0);
      await screenshot(page, 'api-docs-try-it');
    } finally {
      await page.close();
    }
  });
});
