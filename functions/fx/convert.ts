import { InternalError } from '../commons/errors';
import { currency } from '../commons/money';
import { appliedRate, parseRate, type Decimal } from './rate';

/**
 * Conversion math: integers only. An amount of `from` minor units becomes
 *
 *   round_half_up(amount × rate × 10^exp(to) / 10^exp(from))
 *
 * minor units of `to`, with the exponents of ISO 4217 (JPY 0, USD 2, KWD 3) and the rate an exact decimal. Half up,
 * as the fee schedule rounds (ledger/fees.ts): one rule for every platform amount. The merchant's amount is rounded
 * from the exact product at the applied rate (base × (1 − markup)), never from a rounded base amount, and rounding
 * is monotonic, so merchant ≤ base and the spread (base − merchant) is never negative.
 *
 * Refunds convert cumulatively (refundReversal): the k-th refund reverses conv(refunded after it) minus what earlier
 * refunds reversed, so the parts always add up to conv(total refunded), and refunding everything reverses exactly the
 * conversion that was credited, however the refunds split it.
 */

/** What an order locks at confirm (functions/payments/operations/confirm.ts) and every later step uses. */
export interface FxLock {
  source_currency: string;
  settlement_currency: string;
  /** The rate table's rate, a decimal string. */
  base_rate: string;
  /** The rate the merchant is converted at: base_rate × (1 − markup_bps / 10 000), exact. */
  rate: string;
  markup_bps: number;
  /** The rate table entry's effective time. */
  rate_effective_at: string;
  /** The cross-border fee added to the payment method's percentage (functions/fx/settings.ts). */
  cross_border_fee_bps: number;
}

export interface Conversion {
  /** Settlement-currency minor units at the base rate: what the conversion credits the merchant. */
  base: number;
  /** At the applied rate: what the merchant keeps once the spread is taken. */
  merchant: number;
  /** base − merchant ≥ 0: the platform's markup, posted to fx_spread. */
  spread: number;
}

function exponent(code: string): number {
  const cur = currency(code);
  if (!cur) throw new InternalError('fx_invalid_currency', `Currency '${code}' is not a payable ISO 4217 code.`);
  return cur.exponent;
}

/** `amount` minor units of `from` in minor units of `to` at `rate`, rounded half up. */
export function convertAmount(amount: number, from: string, to: string, rate: Decimal): number {
  if (!Number.isSafeInteger(amount) || amount < 0) {
    throw new InternalError('fx_invalid_amount', `Conversion of ${amount}: amounts are non-negative integers of minor units.`);
  }
  const shift = exponent(to) - exponent(from);
  const numerator = BigInt(amount) * rate.mantissa * 10n ** BigInt(Math.max(0, shift));
  const denominator = 10n ** BigInt(rate.scale + Math.max(0, -shift));
  const rounded = (2n * numerator + denominator) / (2n * denominator);
  const result = Number(rounded);
  if (!Number.isSafeInteger(result)) throw new InternalError('fx_amount_overflow', `Converting ${amount} ${from} to ${to} gives ${rounded}, beyond a safe integer.`);
  return result;
}

/** The conversion of `amount` source minor units under `lock`. */
export function conversionOf(lock: FxLock, amount: number): Conversion {
  const base = convertAmount(amount, lock.source_currency, lock.settlement_currency, parseRate(lock.base_rate, 'fx.base_rate'));
  const merchant = convertAmount(amount, lock.source_currency, lock.settlement_currency, appliedRate(parseRate(lock.base_rate, 'fx.base_rate'), lock.markup_bps));
  return { base, merchant, spread: base - merchant };
}

/**
 * What refund k takes from the merchant in the settlement currency: conv_base(refunded after it) − what the order's
 * refunds took so far (`reversedBefore`, the order's fx_refunded). Never negative (a failed refund given back can
 * leave the running total a unit above conv of what is still refunded; the next refund then takes a unit less).
 */
export function refundReversal(lock: FxLock, refundedAfter: number, reversedBefore: number): number {
  return Math.max(0, conversionOf(lock, refundedAfter).base - reversedBefore);
}
