import { describe, expect, it } from 'vitest';
import { containsCardNumber, maskDigitRuns } from '../../functions/channels/card-numbers';

/** Public test numbers, one per brand prefix the detector knows (issue 7 §2). */
export const TEST_PANS = {
  visa: '4242424242424242',
  visa13: '4222222222222',
  mastercard: '5555555555554444',
  mastercard2: '2223003122003222',
  amex34: '343434343434343',
  amex37: '378282246310005',
  discover6011: '6011111111111117',
  discover65: '6500000000000002',
  jcb: '3566002020360505',
  unionpay: '6200000000000005',
  unionpay19: '6205500000000000004',
} as const;

const grouped = (pan: string, sep: string) => pan.match(/.{1,4}/g)!.join(sep);

describe('card numbers in free text', () => {
  it.each(Object.entries(TEST_PANS))('finds a %s number plain, grouped by spaces or dashes, and inside text', (_, pan) => {
    expect(containsCardNumber(pan)).toBe(true);
    expect(containsCardNumber(grouped(pan, ' '))).toBe(true);
    expect(containsCardNumber(grouped(pan, '-'))).toBe(true);
    expect(containsCardNumber(`card ${grouped(pan, ' ')} exp 12/30`)).toBe(true);
    expect(containsCardNumber(`ref:${pan};`)).toBe(true);
  });

  it('finds a grouped number followed by more digit groups (the expiry typed after it)', () => {
    expect(containsCardNumber('4242 4242 4242 4242 12 30')).toBe(true);
  });

  it.each([
    ['a bad check digit', '4242424242424241'],
    ['a prefix no brand uses', '1234567812345670'],
    ['12 digits', '424242424242'],
    ['a 20-digit reference', '42424242424242424242'],
    ['a longer unbroken run holding a card number', `9${TEST_PANS.visa}9`],
    ['an ISO date and amounts', '2026-01-01 paid 4242 of 10000'],
    ['a ms timestamp', '1767225600000'],
  ])('does not flag %s', (_, text) => {
    expect(containsCardNumber(text)).toBe(false);
  });
});

describe('masking digit runs in error messages', () => {
  it('keeps only the last four digits of any run of 13 or more, grouped or not, Luhn or not', () => {
    expect(maskDigitRuns(`No such order: '${TEST_PANS.visa}'.`)).toBe("No such order: '••••••••••••4242'.");
    expect(maskDigitRuns('key 4242 4242-4242 4241!')).toBe('key ••••••••••••4241!');
    expect(maskDigitRuns('1234567890123')).toBe('•••••••••0123');
  });

  it('leaves shorter numbers alone', () => {
    const text = "Send at most 99999999999 minor units; 2026-01-01; 'ord_4242' amount 424242424242.";
    expect(maskDigitRuns(text)).toBe(text);
  });
});
