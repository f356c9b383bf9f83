import currencyCodes from 'currency-codes';

/**
 * Money is an integer count of minor units plus an ISO 4217 code; never a float.
 * Exponents come from the ISO 4217 list (currency-codes), so JPY has 0 decimals and KWD 3.
 */

// ISO 4217 codes that are not spendable currencies: precious metals, SDR/bond units, the test
// and "no currency" codes, and funds codes (bank-internal units such as USN or CLF).
const NOT_PAYABLE = new Set([
  'XAG', 'XAU', 'XPD', 'XPT', 'XBA', 'XBB', 'XBC', 'XBD', 'XDR', 'XSU', 'XUA', 'XTS', 'XXX',
  'BOV', 'CHE', 'CHW', 'CLF', 'COU', 'MXV', 'USN', 'UYI', 'UYW',
]);

/** Largest amount accepted in minor units: well inside Number.MAX_SAFE_INTEGER and DynamoDB's number range. */
export const MAX_AMOUNT = 99_999_999_999;

export interface Currency {
  code: string;
  exponent: number;
}

export function currency(code: string): Currency | undefined {
  if (!/^[A-Z]{3}$/.test(code) || NOT_PAYABLE.has(code)) return undefined;
  const entry = currencyCodes.code(code);
  return entry ? { code, exponent: entry.digits } : undefined;
}

/** Formats minor units as a decimal string in major units without floating point, e.g. (1050, USD) → "10.50". */
export function toMajorString(amount: number, code: string): string {
  const cur = currency(code);
  if (!cur) throw new RangeError(`Unknown currency ${code}`);
  if (!Number.isSafeInteger(amount)) throw new RangeError(`Amount ${amount} is not an integer number of minor units`);
  const sign = amount < 0 ? '-' : '';
  const digits = Math.abs(amount).toString().padStart(cur.exponent + 1, '0');
  if (cur.exponent === 0) return sign + digits;
  return `${sign}${digits.slice(0, -cur.exponent)}.${digits.slice(-cur.exponent)}`;
}
