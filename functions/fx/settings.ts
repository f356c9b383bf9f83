import { ConflictError, InternalError } from '../commons/errors';
import { appliedRate, formatDecimal, parseRate } from './rate';
import type { FxLock } from './convert';
import type { FxRate } from './table';

/**
 * Platform settings of cross-border payments, from the environment (the settlement currency of merchants that set
 * none, SETTLEMENT_CURRENCY, is merchants/payouts.ts's):
 *   CROSS_BORDER_FEE_BPS   added to the payment method's percentage on a converted payment (default 100 = 1.00 %)
 */
export const DEFAULT_CROSS_BORDER_FEE_BPS = 100;

export function crossBorderFeeBps(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.CROSS_BORDER_FEE_BPS?.trim();
  if (!text) return DEFAULT_CROSS_BORDER_FEE_BPS;
  const bps = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(bps <= 10_000)) throw new InternalError('invalid_cross_border_fee_config', `Environment variable CROSS_BORDER_FEE_BPS is '${text}'; use an integer of basis points from 0 to 10000 (100 = 1.00 %).`);
  return bps;
}

/** What a converted order locks at confirm. */
export function lockOf(rate: FxRate, crossBorderBps: number): FxLock {
  return {
    source_currency: rate.from,
    settlement_currency: rate.to,
    base_rate: rate.rate,
    rate: formatDecimal(appliedRate(parseRate(rate.rate, 'base_rate'), rate.markup_bps)),
    markup_bps: rate.markup_bps,
    rate_effective_at: rate.effective_at,
    cross_border_fee_bps: crossBorderBps,
  };
}

/** 409, and retryable: once the operator sets the rate, the same confirm (and Idempotency-Key) goes through. */
export class FxRateUnavailableError extends ConflictError {
  override readonly retryable = true;
}

export function noRateInForce(orderId: string, from: string, to: string, at: Date): FxRateUnavailableError {
  const example = DEMO_RATES.find((r) => r.from === from && r.to === to)?.rate ?? '1.0845';
  return new FxRateUnavailableError(
    'fx_rate_unavailable',
    `Order '${orderId}' is in ${from} and its merchant settles in ${to}, but no ${from}→${to} exchange rate is in force at ${at.toISOString()}, ` +
      `so the payment cannot be converted and was not attempted. The platform operator sets one with \`npx payplane fx set ${from} ${to} ${example}\`; then confirm again.`,
    { param: 'currency', extra: { currency: from, settlement_currency: to } },
  );
}

/**
 * Sandbox demo rates the local cloud seeds at startup (local/seed.ts) and the test tiers set before they run, so
 * that demo and test payments in CNY, EUR, GBP, JPY or KWD convert for USD merchants. Effective from 2026-01-01, markup
 * 100 bps (1 %). Illustrative figures, not market data.
 */
export const DEMO_RATES_EFFECTIVE_AT = '2026-01-01T00:00:00.000Z';
export const DEMO_MARKUP_BPS = 100;
export const DEMO_RATES: { from: string; to: string; rate: string }[] = [
  { from: 'CNY', to: 'USD', rate: '0.1381' },
  { from: 'EUR', to: 'USD', rate: '1.0845' },
  { from: 'GBP', to: 'USD', rate: '1.2712' },
  { from: 'JPY', to: 'USD', rate: '0.006712' },
  { from: 'KWD', to: 'USD', rate: '3.2531' },
  { from: 'USD', to: 'EUR', rate: '0.9221' },
  { from: 'USD', to: 'JPY', rate: '148.98' },
  { from: 'USD', to: 'KWD', rate: '0.30740' },
];
