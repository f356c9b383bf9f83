import { createPublicKey, randomUUID, verify, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalString } from '../../functions/checkout/sign';
import { launchBrowser, screenshot } from '../browser/browser';
import { call, cloud, newMerchant, orderBody } from './support';

/**
 * The hosted checkout in a real browser (Chromium through playwright-core) against the local cloud: the payer
 * fills the card form at the order's checkout_url and lands on the merchant's return_url (a tiny server here),
 * which verifies the redirect's signature with the platform's public key (KMS GetPublicKey), as a merchant would.
 */

interface Landing {
  params: URLSearchParams;
  verified: boolean;
}

let browser: Browser;
let server: Server;
let returnBase: string;
let publicKey: KeyObject;
let merchant: { id: string; key: string };
const landings = new Map<string, Landing>();

beforeAll(async () => {
  const c = cloud();
  const kms = new KMSClient({ region: c.region, endpoint: c.endpoints.kms, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const { PublicKey } = await kms.send(new GetPublicKeyCommand({ KeyId: `alias/payplane-${c.stage}-checkout-signing` }));
  publicKey = createPublicKey({ key: Buffer.from(PublicKey!), format: 'der', type: 'spki' });

  // The merchant's return_url: verifies the signature and says so on the page.
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const params = url.searchParams;
    const sign = params.get('sign') ?? '';
    const verified = verify('sha256', Buffer.from(canonicalString(Object.fromEntries(params))), publicKey, Buffer.from(sign, 'base64url'));
    landings.set(params.get('order_id') ?? '', { params, verified });
    res
      .writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
      .end(`<!doctype html><html lang="en"><title>Merchant</title><h1 id="thanks">Thanks: ${verified ? 'signature verified' : 'BAD SIGNATURE'}</h1>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  returnBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  merchant = await newMerchant('Acme Coffee 咖啡');
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

async function newOrder(over: Record<string, unknown> = {}) {
  const res = await call('POST', '/v1/orders', {
    key: merchant.key,
    idempotencyKey: randomUUID(),
    body: orderBody({ amount: 123456, currency: 'USD', description: 'Two coffees', return_url: `${returnBase}/thanks`, ...over }),
  });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; checkout_url: string; merchant_order_no: string };
}

async function pay(page: Page, number: string, labels = { number: 'Card number', exp: 'Expiry (MM/YY)', cvc: 'Security code (CVC)' }) {
  await page.getByLabel(labels.number).fill(number);
  await page.getByLabel(labels.exp).fill('12/34');
  await page.getByLabel(labels.cvc).fill('123');
  await page.getByRole('button', { name: /^(Pay|支付)/ }).click();
}

async function expectSucceeded(orderId: string) {
  const res = await call('GET', `/v1/orders/${orderId}`, { key: merchant.key });
  expect(res.body.status).toBe('succeeded');
}

describe('hosted checkout (browser)', () => {
  it('pays with 4242… and lands on return_url with a signature the merchant verifies', async () => {
    const order = await newOrder();
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    try {
      const res = await page.goto(order.checkout_url);
      expect(res?.headers()['content-security-policy']).toMatch(/script-src 'nonce-[^']+'/);
      expect(res?.headers()['x-frame-options']).toBe('DENY');
      expect(res?.headers()['cache-control']).toBe('no-store');
      await expect.poll(() => page.locator('html').getAttribute('lang')).toBe('en');
      expect(await page.locator('#merchant').textContent()).toBe('Acme Coffee 咖啡');
      expect(await page.locator('#amount').textContent()).toBe('$1,234.56');
      expect(await page.locator('#description').textContent()).toBe('Two coffees');

      // Client-side Luhn check: announced, nothing submitted.
      await pay(page, '4242424242424241');
      await expect.poll(() => page.locator('#number-error').textContent()).toContain('valid card number');
      expect(await page.getByLabel('Card number').getAttribute('aria-invalid')).toBe('true');
      expect(await page.getByRole('alert').textContent()).toContain('correct');

      await pay(page, '4242 4242 4242 4242');
      await page.waitForURL(`${returnBase}/thanks?**`);
      expect(await page.locator('#thanks').textContent()).toBe('Thanks: signature verified');
      const landing = landings.get(order.id)!;
      expect(landing.verified).toBe(true);
      expect(Object.fromEntries(landing.params)).toMatchObject({
        merchant_id: merchant.id,
        order_id: order.id,
        merchant_order_no: order.merchant_order_no,
        status: 'succeeded',
        amount: '123456',
        currency: 'USD',
      });
      expect(Number(landing.params.get('ts'))).toBeGreaterThan(Date.now() / 1000 - 120);
      // A tampered parameter does not verify.
      const tampered = Object.fromEntries(landing.params);
      tampered.amount = '1';
      expect(verify('sha256', Buffer.from(canonicalString(tampered)), publicKey, Buffer.from(tampered.sign!, 'base64url'))).toBe(false);
      // Nor does the same signature presented as another merchant's.
      const otherMerchant: Record<string, string> = { ...Object.fromEntries(landing.params), merchant_id: 'mch_someoneelse' };
      expect(verify('sha256', Buffer.from(canonicalString(otherMerchant)), publicKey, Buffer.from(otherMerchant.sign!, 'base64url'))).toBe(false);
      await screenshot(page, 'checkout-success-return-url');
      await expectSucceeded(order.id);
    } finally {
      await context.close();
    }
  });

  it('a declined card shows the error, then 4242… succeeds (no return_url: the result page)', async () => {
    const order = await newOrder({ return_url: undefined, currency: 'JPY', amount: 5000 });
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    try {
      await page.goto(order.checkout_url);
      expect(await page.locator('#amount').textContent()).toBe('¥5,000');
      await pay(page, '4000000000000002');
      await expect.poll(() => page.getByRole('alert').textContent()).toContain('Your payment was declined');
      await screenshot(page, 'checkout-declined');
      await pay(page, '4242424242424242');
      await expect.poll(() => page.locator('#result').textContent()).toBe('Payment successful');
      expect(page.url()).toBe(`${order.checkout_url}?lang=en`);
      await screenshot(page, 'checkout-declined-then-success');
      await expectSucceeded(order.id);
    } finally {
      await context.close();
    }
  });

  it('3-D Secure failed: the form again with the error (keyboard only), then 4242… succeeds', async () => {
    const order = await newOrder();
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    try {
      await page.goto(`${order.checkout_url}?lang=en`);
      await pay(page, '4000000000003220');
      await page.waitForURL(`${order.checkout_url}/3ds?lang=en`);
      await page.getByRole('button', { name: 'Fail authentication' }).focus();
      await page.keyboard.press('Enter');
      await expect.poll(() => page.getByRole('alert').textContent()).toContain('Authentication failed.');
      // Keyboard: Tab from the card number to expiry to CVC to the Pay button.
      await page.getByLabel('Card number').focus();
      await page.keyboard.type('4242424242424242');
      await page.keyboard.press('Tab');
      await page.keyboard.type('12/34');
      await page.keyboard.press('Tab');
      await page.keyboard.type('123');
      await page.keyboard.press('Tab');
      expect(await page.locator('#submit').evaluate((el) => el === (el as { ownerDocument: { activeElement: unknown } }).ownerDocument.activeElement)).toBe(true);
      await page.keyboard.press('Enter');
      await page.waitForURL(`${returnBase}/thanks?**`);
      expect(landings.get(order.id)?.verified).toBe(true);
      await expectSucceeded(order.id);
    } finally {
      await context.close();
    }
  });

  it('zh-CN (Accept-Language): a decline in Chinese only, then 3-D Secure challenge, approve, back to return_url', async () => {
    const order = await newOrder({ currency: 'CNY', amount: 8800, description: '两杯咖啡' });
    const context = await browser.newContext({ locale: 'zh-CN', extraHTTPHeaders: { 'Accept-Language': 'zh-CN,zh;q=0.9,en;q=0.5' } });
    const page = await context.newPage();
    const labels = { number: '卡号', exp: '有效期 (MM/YY)', cvc: '安全码 (CVC)' };
    try {
      await page.goto(order.checkout_url);
      await expect.poll(() => page.locator('html').getAttribute('lang')).toBe('zh-CN');
      expect(await page.locator('#amount').textContent()).toBe('¥88.00');
      await pay(page, '4000000000009995', labels);
      await expect.poll(() => page.getByRole('alert').textContent()).toBe('支付被拒绝。 您的卡余额不足。请重试或更换一张卡。');
      await pay(page, '4000000000003220', labels);
      await page.waitForURL(`${order.checkout_url}/3ds?lang=zh-CN`);
      expect(await page.locator('h1').textContent()).toContain('3-D Secure');
      await screenshot(page, 'checkout-3ds-challenge-zh-CN');
      await page.getByRole('button', { name: '确认' }).click();
      await page.waitForURL(`${returnBase}/thanks?**`);
      expect(landings.get(order.id)?.verified).toBe(true);
      expect(landings.get(order.id)?.params.get('status')).toBe('succeeded');
      await screenshot(page, 'checkout-3ds-success-zh-CN');
      await expectSucceeded(order.id);

      // The language switch (?lang=) on the now-paid order's page: the result page, in English.
      await page.goto(`${order.checkout_url}?lang=en`);
      expect(await page.locator('html').getAttribute('lang')).toBe('en');
      expect(await page.locator('#result').textContent()).toBe('Payment successful');
      await page.getByRole('link', { name: '中文' }).click();
      await expect.poll(() => page.locator('#result').textContent()).toBe('支付成功');
    } finally {
      await context.close();
    }
  });
});
