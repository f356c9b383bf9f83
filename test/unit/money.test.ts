import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { currency, MAX_AMOUNT, toMajorString } from '../../functions/commons/money';

describe('currencies', () => {
  it('uses the real ISO 4217 exponent', () => {
    expect(currency('USD')?.exponent).toBe(2);
    expect(currency('JPY')?.exponent).toBe(0);
    expect(currency('KRW')?.exponent).toBe(0);
    expect(currency('KWD')?.exponent).toBe(3);
    expect(currency('BHD')?.exponent).toBe(3);
    expect(currency('CNY')?.exponent).toBe(2);
  });

  it('refuses codes that are not spendable money', () => {
    for (const code of ['XAU', 'XTS', 'XXX', 'USN', 'CLF', 'ABC', 'usd', 'US']) expect(currency(code)).toBeUndefined();
  });
});

describe('formatting minor units', () => {
  it('places the decimal point by exponent without floating point', () => {
    expect(toMajorString(1050, 'USD')).toBe('10.50');
    expect(toMajorString(5, 'USD')).toBe('0.05');
    expect(toMajorString(500, 'JPY')).toBe('500');
    expect(toMajorString(1, 'KWD')).toBe('0.001');
    expect(toMajorString(-1234, 'EUR')).toBe('-12.34');
  });

  it('round-trips every amount exactly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_AMOUNT }), fc.constantFrom('USD', 'JPY', 'KWD'), (amount, code) => {
        const text = toMajorString(amount, code);
        expect(BigInt(text.replace('.', ''))).toBe(BigInt(amount));
        expect(text.split('.')[1]?.length ?? 0).toBe(currency(code)!.exponent);
      }),
    );
  });
});
