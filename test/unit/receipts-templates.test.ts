import { describe, expect, it } from 'vitest';
import { formatTime, renderReceipt, type ReceiptFacts } from '../../functions/receipts/templates';

/** The receipts' words (functions/receipts/templates.ts): language, amounts per currency exponent, times, escaping. */
const facts = (over: Partial<ReceiptFacts> = {}): ReceiptFacts => ({
  kind: 'payment',
  locale: 'en',
  merchantName: 'Acme Coffee',
  amount: 2500,
  currency: 'USD',
  orderId: 'ord_abc',
  merchantOrderNo: 'no_123',
  at: '2026-12-01T08:30:00.000Z',
  ...over,
});
/** Intl puts a no-break space between a currency code and the number; compare with plain spaces. */
const plain = (s: string) => s.replace(/\u00a0/g, ' ');

describe('amounts: minor units with the ISO 4217 exponent, in the locale’s format', () => {
  it.each([
    ['en', 2500, 'USD', '$25.00'],
    ['zh-CN', 2500, 'USD', 'US$25.00'],
    ['en', 500, 'JPY', '¥500'],
    ['zh-CN', 500, 'JPY', 'JP¥500'],
    ['en', 1234, 'KWD', 'KWD 1.234'],
    ['zh-CN', 1234, 'KWD', 'KWD 1.234'],
    ['zh-CN', 1050, 'CNY', '¥10.50'],
    // Beyond what a float keeps exactly after scaling by 10^-2: the decimal string is formatted as is.
    ['en', 99_999_999_999, 'USD', '$999,999,999.99'],
    ['en', 1, 'KWD', 'KWD 0.001'],
  ] as const)('%s %i %s → %s', (locale, amount, currency, shown) => {
    const r = renderReceipt(facts({ locale, amount, currency }));
    expect(plain(r.text)).toContain(shown);
    expect(plain(r.sms)).toContain(shown);
    expect(plain(r.subject)).toContain(shown);
  });
});

describe('language', () => {
  it('en: a payment receipt in English, times in UTC', () => {
    const r = renderReceipt(facts());
    expect(r.subject).toBe('Your receipt from Acme Coffee: $25.00');
    expect(r.text).toContain('You paid $25.00 to Acme Coffee.');
    expect(r.text).toContain('Order number: no_123');
    expect(r.text).toContain('Time: 2026-12-01 08:30:00 UTC');
    expect(r.html).toContain('<html lang="en">');
    expect(r.sms).toBe('Payplane: you paid $25.00 to Acme Coffee (order no_123).');
  });

  it('zh-CN: a payment receipt in Chinese, times in Beijing time', () => {
    const r = renderReceipt(facts({ locale: 'zh-CN' }));
    expect(r.subject).toBe('Acme Coffee 付款凭证：US$25.00');
    expect(r.text).toContain('您已向 Acme Coffee 成功付款 US$25.00。');
    expect(r.text).toContain('订单号: no_123');
    expect(r.text).toContain('时间: 2026-12-01 16:30:00 北京时间');
    expect(r.html).toContain('<html lang="zh-CN">');
    expect(r.sms).toBe('【Payplane】您已向Acme Coffee付款US$25.00（订单号 no_123）。');
    expect(r.text).not.toMatch(/You paid|Order number/);
  });

  it.each(['en', 'zh-CN'] as const)('%s: a refund receipt names the refund', (locale) => {
    const r = renderReceipt(facts({ locale, kind: 'refund', amount: 500, refundId: 're_1' }));
    expect(r.subject).toBe(locale === 'en' ? 'Refund from Acme Coffee: $5.00' : 'Acme Coffee 退款凭证：US$5.00');
    expect(r.text).toContain(locale === 'en' ? 'Refund: re_1' : '退款单号: re_1');
    expect(r.sms).toContain(locale === 'en' ? 'refunded $5.00' : '退款US$5.00');
  });

  it('formats a time across midnight in Beijing', () => {
    expect(formatTime('2026-12-31T17:00:00Z', 'zh-CN')).toBe('2027-01-01 01:00:00 北京时间');
    expect(formatTime('2026-12-31T17:00:00Z', 'en')).toBe('2026-12-31 17:00:00 UTC');
  });
});

describe('HTML', () => {
  it("escapes the merchant's name and the order's description", () => {
    const r = renderReceipt(facts({ merchantName: 'A&B <script>', description: '"quoted" <b>' }));
    expect(r.html).toContain('A&amp;B &lt;script&gt;');
    expect(r.html).toContain('&quot;quoted&quot; &lt;b&gt;');
    expect(r.html).not.toContain('<script>');
    // Text and SMS are not HTML: shown as typed.
    expect(r.text).toContain('A&B <script>');
  });
});
