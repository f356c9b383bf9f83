import { describe, expect, it } from 'vitest';
import { DECLINE_CODES } from '../../functions/channels/errors';
import { chooseLang, failureText, formatAmount } from '../../functions/checkout/i18n';
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
  it('nonce-only scripts, no framing, no caching, HSTS; the return origin may receive the form redirect', () => {
    const h = securityHeaders('abc', ['https://shop.example']);
    expect(h['Content-Security-Policy']).toContain("script-src 'nonce-abc'");
    expect(h['Content-Security-Policy']).toContain("form-action 'self' https://shop.example");
    expect(h['Content-Security-Policy']).toContain("frame-ancestors 'none'");
    expect(h['X-Frame-Options']).toBe('DENY');
    expect(h['Cache-Control']).toBe('no-store');
    expect(h['Strict-Transport-Security']).toBe('max-age=63072000; includeSubDomains');
  });
});

describe("checkout: failure messages by decline code (the channel's English text never reaches the page)", () => {
  it.each([
    ['en', 'insufficient_funds', 'Your card has insufficient funds. Try again or use another card.'],
    ['zh-CN', 'insufficient_funds', '您的卡余额不足。请重试或更换一张卡。'],
    ['zh-CN', 'card_declined', '您的卡被拒绝。请重试或更换一张卡。'],
    ['zh-CN', 'expired_card', '您的卡已过期，请检查有效期。请重试或更换一张卡。'],
    ['zh-CN', 'incorrect_cvc', '安全码不正确。请重试或更换一张卡。'],
    ['zh-CN', 'processing_error', '处理您的卡时出错。请重试或更换一张卡。'],
    ['zh-CN', 'authentication_failed', '您的银行未能验证此笔支付 (3-D Secure)。请重试或更换一张卡。'],
    ['en', 'do_not_honor', 'The payment could not be completed. Try again or use another card.'],
    ['zh-CN', 'do_not_honor', '支付未能完成。请重试或更换一张卡。'],
    ['zh-CN', 'toString', '支付未能完成。请重试或更换一张卡。'],
    ['zh-CN', undefined, '支付未能完成。请重试或更换一张卡。'],
  ] as const)('%s, %s → %s', (lang, code, text) => {
    expect(failureText(lang, code)).toBe(text);
  });

  it('every decline code has its own words in both languages, and zh-CN has no English in them', () => {
    for (const code of DECLINE_CODES) {
      expect(failureText('en', code)).not.toBe(failureText('en', undefined));
      expect(failureText('zh-CN', code)).not.toBe(failureText('zh-CN', undefined));
      expect(failureText('zh-CN', code).replace('3-D Secure', '')).not.toMatch(/[A-Za-z]/);
    }
  });
});
