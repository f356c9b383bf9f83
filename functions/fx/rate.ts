import { InvalidRequestError } from '../commons/errors';

/**
 * Exchange rates as exact decimals: a BigInt mantissa and a decimal scale (1.0845 = 10845 × 10⁻⁴), parsed from and
 * written as decimal strings. Never a float: 0.1 + 0.2 must not decide what a merchant is paid.
 */
export interface Decimal {
  mantissa: bigint;
  scale: number;
}

/** Significant digits a rate may have: more than any published reference rate, and well inside what BigInt math needs. */
export const MAX_RATE_DIGITS = 12;
/** 10 000 bps = 100 %. */
export const MAX_MARKUP_BPS = 10_000;

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/** Parses a positive rate such as "1.0845" or "0.0067"; throws an InvalidRequestError naming `field`, the value and the fix. */
export function parseRate(text: unknown, field = 'rate'): Decimal {
  const fail = (why: string): never => {
    throw new InvalidRequestError(
      'invalid_fx_rate',
      `Invalid '${field}': got ${JSON.stringify(text)}; ${why}. Give the price of one unit of the source currency in the target currency as a plain decimal, e.g. 1.0845 (EUR→USD) or 0.0067 (JPY→USD).`,
      { param: field },
    );
  };
  if (typeof text !== 'string') return fail('a rate is a decimal string');
  const match = DECIMAL.exec(text.trim());
  if (!match) return fail('it must be digits with an optional decimal point (no sign, exponent or thousands separator)');
  const fraction = match[2] ?? '';
  const mantissa = BigInt(match[1]! + fraction);
  if (mantissa === 0n) return fail('a rate must be greater than zero');
  const d = normalize({ mantissa, scale: fraction.length });
  const digits = d.mantissa.toString().length;
  // Significant digits: leading zeros (0.0067) do not count, the scale's trailing zeros are gone after normalize.
  if (digits > MAX_RATE_DIGITS) return fail(`it has ${digits} significant digits, at most ${MAX_RATE_DIGITS} are kept`);
  return d;
}

export function parseMarkupBps(value: unknown, field = 'markup_bps'): number {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_MARKUP_BPS) {
    throw new InvalidRequestError(
      'invalid_fx_markup',
      `Invalid '${field}': got ${JSON.stringify(value)}. Give the markup in basis points, an integer from 0 to ${MAX_MARKUP_BPS} (150 = 1.50 %).`,
      { param: field },
    );
  }
  return n;
}

/** Trailing zeros of the fraction removed: "1.50" and "1.5" are one rate. */
export function normalize(d: Decimal): Decimal {
  let { mantissa, scale } = d;
  while (scale > 0 && mantissa % 10n === 0n) {
    mantissa /= 10n;
    scale -= 1;
  }
  return { mantissa, scale };
}

export function formatDecimal(d: Decimal): string {
  const { mantissa, scale } = normalize(d);
  const digits = mantissa.toString().padStart(scale + 1, '0');
  return scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

/** The rate a merchant is converted at: base × (1 − markup), exact (4 more decimal places, then normalized). */
export function appliedRate(base: Decimal, markupBps: number): Decimal {
  return normalize({ mantissa: base.mantissa * BigInt(MAX_MARKUP_BPS - markupBps), scale: base.scale + 4 });
}
