import { luhnValid } from './cards';

/**
 * Finding card numbers where none belong: free text a merchant sends, and error messages on their
 * way out. No imports beyond cards.ts, so this bundles for the browser too.
 */

/** Digit groups joined by single spaces or dashes, as people type "4242 4242-4242 4242". */
const GROUPED_DIGITS = /\d+(?:[\s-]\d+)*/g;

/** Issuer prefixes that mark a card number: visa 4, mastercard 51–55 and 2221–2720, amex 34/37, discover 6011/65, jcb 35, unionpay 62. */
function hasCardPrefix(digits: string): boolean {
  const two = Number(digits.slice(0, 2));
  const four = Number(digits.slice(0, 4));
  return (
    digits.startsWith('4') ||
    (two >= 51 && two <= 55) ||
    (four >= 2221 && four <= 2720) ||
    two === 34 ||
    two === 37 ||
    digits.startsWith('6011') ||
    two === 65 ||
    two === 35 ||
    two === 62
  );
}

const isCardNumber = (digits: string) => digits.length >= 13 && digits.length <= 19 && hasCardPrefix(digits) && luhnValid(digits);

/**
 * True when `text` holds a card number: 13–19 digits, either one unbroken run or whole groups
 * separated by spaces or dashes, with a card-brand prefix, passing Luhn. A longer unbroken run
 * is not searched inside (any 30-digit reference would hold a "card" by chance); grouped runs are
 * searched group-aligned, so "4242 4242 4242 4242 12/30" is caught.
 */
export function containsCardNumber(text: string): boolean {
  for (const [run] of text.matchAll(GROUPED_DIGITS)) {
    const groups = run.split(/[\s-]/);
    for (let start = 0; start < groups.length; start++) {
      let digits = '';
      for (let end = start; end < groups.length && digits.length < 19; end++) {
        digits += groups[end];
        if (isCardNumber(digits)) return true;
      }
    }
  }
  return false;
}

/** 13 or more digits, possibly grouped: long enough to be, or to hold, a card number. */
const LONG_DIGIT_RUN = /\d(?:[\s-]?\d){12,}/g;

/**
 * Replaces every run of 13 or more digits (grouped or not) with bullets and its last four digits,
 * the only part of a card number that may be shown. No Luhn check: this is the last line of
 * defence for text that should never have carried one.
 */
export function maskDigitRuns(text: string): string {
  return text.replace(LONG_DIGIT_RUN, (run) => {
    const digits = run.replace(/[\s-]/g, '');
    return `${'•'.repeat(digits.length - 4)}${digits.slice(-4)}`;
  });
}
