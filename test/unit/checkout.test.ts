import { describe, expect, it } from 'vitest';
import { chooseLang, formatAmount } from '../../functions/checkout/i18n';
import { securityHeaders } from '../../functions/checkout/page';
import { canonicalString } from '../../functions/checkout/sign';

describe('checkout: language', () => {
  it.each([
    [undefined, undefined, 'en'],
    [undefined, 'zh-CN,zh;q=0.9,en;q=0.8', 'zh-CN'],
    [undefined, 'zh-TW', 'zh-CN'],
    [undefined, 'fr-FR,en;q=0.5,zh;q=0.9', 'zh-CN'],
    [undefined, 'de-DE', 'en'],
    ['en', 'zh-CN', 'en'],
    ['zh-CN', 'en', 'zh-CN'],
    ['xx', 'zh', 'zh-CN'],
  ] as const)('?lang=%s, Accept-Language %s → %s', (query, header, lang) => {
    expect(chooseLang(query, header)).toBe(lang);
  });
});

describe('checkout: amounts (ISO exponent, exact decimals, locale)', () => {
  it.each([
    [1999, 'USD', 'en', '$19.99'],
    [500, 'JPY', 'en', '¥500'],
    [1, 'KWD', 'en', 'KWD 0.001'],
    [8800, 'CNY', 'zh-CN', '¥88.00'],
    [99_999_999_999, 'USD', 'en', '$999,999,999.99'],
  ] as const)('%i %s in %s → %s', (amount, code, lang, text) => {
    expect(formatAmount(amount, code, lang).replace(/\u00a0/g, ' ')).toBe(text);
  });
});

describe('checkout: signature base string', () => {
  it('sorts by key, joins k=v with &, leaves out sign and empty values, raw values', () => {
    expect(canonicalString({ ts: '1', sign: 'x', amount: '100', b: '', order_id: 'ord_1', merchant_order_no: 'A&B=1' })).toBe(
      'amount=100&merchant_order_no=A&B=1&order_id=ord_1&ts=1',
    );
  });
});

describe('checkout: security headers', () => {
  it('nonce-only scripts, no framing, no caching; the return origin may receive the form redirect', () => {
    const h = securityHeaders('abc', ['https://shop.example']);
    expect(h['Content-Security-Policy']).toContain("script-src 'nonce-abc'");
    expect(h['Content-Security-Policy']).toContain("form-action 'self' https://shop.example");
    expect(h['Content-Security-Policy']).toContain("frame-ancestors 'none'");
    expect(h['X-Frame-Options']).toBe('DENY');
    expect(h['Cache-Control']).toBe('no-store');
  });
});
