import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cardBrand,
  cvcValid,
  isExpired,
  last4,
  luhnCheckDigit,
  luhnValid,
  normalizePan,
  panValid,
} from '../../functions/channels/cards';
import { TEST_CARDS } from '../../functions/channels/sandbox/test-cards';

/** A Luhn-valid number of `length` digits (12–19) starting with `prefix`. */
const validPan = (length = 16) =>
  fc
    .array(fc.integer({ min: 0, max: 9 }), { minLength: length - 1, maxLength: length - 1 })
    .map((digits) => digits.join(''))
    .map((partial) => partial + luhnCheckDigit(partial));

describe('Luhn', () => {
  it('accepts every sandbox test card and the classic scheme test numbers', () => {
    const numbers = [...TEST_CARDS.map((c) => c.number), '5555555555554444', '378282246310005', '3530111333300000', '6200000000000005'];
    for (const n of numbers) expect(luhnValid(n), n).toBe(true);
  });

  it('refuses a changed check digit, non-digits and wrong lengths', () => {
    expect(luhnValid('4242424242424241')).toBe(false);
    expect(luhnValid('4242 4242 4242 4242')).toBe(false); // callers normalize first
    expect(luhnValid(normalizePan('4242 4242-4242 4242'))).toBe(true);
    expect(luhnValid('42424242424')).toBe(false); // 11 digits
    expect(luhnValid('42424242424242424242')).toBe(false); // 20 digits
    expect(luhnValid('')).toBe(false);
  });

  it('property: a valid number with any one digit changed is invalid', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 12, max: 19 }).chain((len) => fc.tuple(validPan(len), fc.nat({ max: len - 1 }), fc.integer({ min: 1, max: 9 }))),
        ([pan, position, delta]) => {
          expect(luhnValid(pan)).toBe(true);
          const changed = pan.slice(0, position) + ((Number(pan[position]) + delta) % 10) + pan.slice(position + 1);
          expect(changed).not.toBe(pan);
          expect(luhnValid(changed)).toBe(false);
        },
      ),
    );
  });

  it('property: the check digit is unique', () => {
    fc.assert(
      fc.property(validPan(16), (pan) => {
        const valid = [...'0123456789'].filter((d) => luhnValid(pan.slice(0, -1) + d));
        expect(valid).toEqual([pan.at(-1)]);
      }),
    );
  });
});

describe('brands by IIN', () => {
  it.each([
    ['4242424242424242', 'visa'],
    ['4000000000003220', 'visa'],
    ['5555555555554444', 'mastercard'],
    ['5105105105105100', 'mastercard'],
    ['2221000000000009', 'mastercard'],
    ['2720990000000007', 'mastercard'],
    ['378282246310005', 'amex'],
    ['341111111111111', 'amex'],
    ['3530111333300000', 'jcb'],
    ['3589000000000003', 'jcb'],
    ['6200000000000005', 'unionpay'],
    ['8171999927660000', 'unionpay'],
    ['6011111111111117', 'unknown'], // Discover is not a brand we take
    ['2720999999999996', 'mastercard'],
    ['2721000000000004', 'unknown'],
    ['3527000000000000', 'unknown'],
    ['', 'unknown'],
  ])('%s → %s', (pan, brand) => {
    expect(cardBrand(pan)).toBe(brand);
  });

  it('checks the length each brand issues', () => {
    expect(panValid('378282246310005')).toBe(true); // amex, 15
    expect(panValid('4242424242424242')).toBe(true); // visa, 16
    expect(panValid('4222222222222')).toBe(true); // visa, 13
    const amex16 = '37828224631000' + '0';
    expect(panValid(amex16 + luhnCheckDigit(amex16))).toBe(false);
    expect(panValid('4242424242424241')).toBe(false);
  });
});

describe('last4 and CVC', () => {
  it('shows only the last four digits', () => {
    expect(last4('4242 4242 4242 4242')).toBe('4242');
    expect(last4('378282246310005')).toBe('0005');
  });

  it('wants 4 digits for amex and 3 for the others', () => {
    expect(cvcValid('1234', 'amex')).toBe(true);
    expect(cvcValid('123', 'amex')).toBe(false);
    expect(cvcValid('123', 'visa')).toBe(true);
    expect(cvcValid('1234', 'visa')).toBe(false);
    expect(cvcValid('12a', 'visa')).toBe(false);
  });
});

describe('expiry (end of month, UTC)', () => {
  it('is good through the last millisecond of the expiry month', () => {
    expect(isExpired(4, 2030, new Date('2030-04-30T23:59:59.999Z'))).toBe(false);
    expect(isExpired(4, 2030, new Date('2030-05-01T00:00:00.000Z'))).toBe(true);
    expect(isExpired(12, 2030, new Date('2030-12-31T23:59:59.999Z'))).toBe(false);
    expect(isExpired(12, 2030, new Date('2031-01-01T00:00:00.000Z'))).toBe(true);
  });

  it('reads the boundary in UTC, whatever the local time zone says', () => {
    // May 1, 01:00 in UTC+8 is still April 30 in UTC; April 30, 20:00 in UTC-8 is already May 1 in UTC.
    expect(isExpired(4, 2030, new Date('2030-05-01T01:00:00+08:00'))).toBe(false);
    expect(isExpired(4, 2030, new Date('2030-04-30T20:00:00-08:00'))).toBe(true);
  });

  it('takes two-digit years as 20xx and refuses invalid months', () => {
    const now = new Date('2026-06-15T00:00:00Z');
    expect(isExpired(6, 26, now)).toBe(false);
    expect(isExpired(5, 26, now)).toBe(true);
    expect(isExpired(0, 2030, now)).toBe(true);
    expect(isExpired(13, 2030, now)).toBe(true);
  });

  it('property: a card is expired exactly from the first instant of the next month', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 2000, max: 2099 }), (month, year) => {
        const next = Date.UTC(year, month, 1);
        expect(isExpired(month, year, new Date(next - 1))).toBe(false);
        expect(isExpired(month, year, new Date(next))).toBe(true);
      }),
    );
  });
});
