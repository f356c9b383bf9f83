/**
 * Card utilities shared by the channels and, later, the checkout page's client-side checks.
 * Pure functions with no imports, so they bundle for the browser as they are.
 *
 * Never log what goes in here: callers hold the PAN inside a `Secret` and reveal it only to call these.
 */

export type CardBrand = 'visa' | 'mastercard' | 'amex' | 'unionpay' | 'jcb' | 'unknown';

/** Removes the spaces and dashes people type between digit groups: "4242 4242-4242 4242" → "4242424242424242". */
export function normalizePan(input: string): string {
  return input.replace(/[\s-]/g, '');
}

/** The Luhn (mod 10) check over a string of 12 to 19 digits; anything else is invalid. */
export function luhnValid(pan: string): boolean {
  if (!/^\d{12,19}$/.test(pan)) return false;
  let sum = 0;
  for (let i = 0; i < pan.length; i++) {
    let digit = pan.charCodeAt(pan.length - 1 - i) - 48;
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

/** The digit that makes `partial` + digit Luhn-valid (for test fixtures and generators). */
export function luhnCheckDigit(partial: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(partial + d)) return String(d);
  throw new RangeError('luhnCheckDigit needs 11 to 18 digits');
}

/**
 * The brand by issuer identification number (IIN) prefix:
 * visa 4; mastercard 51–55 and 2221–2720; amex 34, 37; jcb 3528–3589; unionpay 62 and 81.
 */
export function cardBrand(pan: string): CardBrand {
  const digits = normalizePan(pan);
  if (!/^\d{2,}/.test(digits)) return 'unknown';
  const two = Number(digits.slice(0, 2));
  const four = Number(digits.slice(0, 4));
  if (digits.startsWith('4')) return 'visa';
  if ((two >= 51 && two <= 55) || (digits.length >= 4 && four >= 2221 && four <= 2720)) return 'mastercard';
  if (two === 34 || two === 37) return 'amex';
  if (digits.length >= 4 && four >= 3528 && four <= 3589) return 'jcb';
  if (two === 62 || two === 81) return 'unionpay';
  return 'unknown';
}

/** Valid lengths per brand (ISO/IEC 7812 as the schemes issue them). */
const LENGTHS: Record<CardBrand, readonly number[]> = {
  visa: [13, 16, 19],
  mastercard: [16],
  amex: [15],
  jcb: [16, 17, 18, 19],
  unionpay: [16, 17, 18, 19],
  unknown: [12, 13, 14, 15, 16, 17, 18, 19],
};

/** Digits only, a length the brand issues, and a valid Luhn check digit. */
export function panValid(pan: string): boolean {
  const digits = normalizePan(pan);
  return LENGTHS[cardBrand(digits)].includes(digits.length) && luhnValid(digits);
}

/** The last four digits, the only part of a PAN that may be shown or stored in the clear. */
export function last4(pan: string): string {
  return normalizePan(pan).slice(-4);
}

/** Two-digit years (`27`) mean 20xx, as printed on cards. */
export function normalizeExpYear(year: number): number {
  return year < 100 ? 2000 + year : year;
}

export function expMonthValid(month: number): boolean {
  return Number.isInteger(month) && month >= 1 && month <= 12;
}

/**
 * A card is good through the last moment of its expiry month, in UTC: it is expired from the
 * first instant of the following month. Invalid months count as expired.
 */
export function isExpired(expMonth: number, expYear: number, now: Date = new Date()): boolean {
  if (!expMonthValid(expMonth) || !Number.isInteger(expYear)) return true;
  const firstInstantAfter = Date.UTC(normalizeExpYear(expYear), expMonth, 1); // month is 0-based: expMonth = the next month
  return now.getTime() >= firstInstantAfter;
}

/** 3 digits, or 4 for amex. */
export function cvcValid(cvc: string, brand: CardBrand = 'unknown'): boolean {
  return brand === 'amex' ? /^\d{4}$/.test(cvc) : brand === 'unknown' ? /^\d{3,4}$/.test(cvc) : /^\d{3}$/.test(cvc);
}
