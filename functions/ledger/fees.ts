import * as z from 'zod';
import { InternalError, InvalidRequestError } from '../commons/errors';
import { currency, MAX_AMOUNT } from '../commons/money';

/**
 * Fee schedules: per payment method, a percentage in basis points plus a fixed amount.
 *
 *   fee = min(amount, round_half_up(amount × percent_bps / 10 000) + fixed(currency))
 *
 * computed with integers only (BigInt), never floats. `fixed` is given in minor units of a
 * 2-decimal currency (30 = 0.30) and scaled to the currency's ISO 4217 exponent (×10 for KWD,
 * ÷100 rounded half up for JPY), unless `fixed_by_currency` names the currency: a flat fee is a
 * round local amount, not an exchange-rate conversion, so currencies where the scaled value makes
 * no sense (0.30 → ¥0) are listed explicitly.
 *
 * The platform default is DEFAULT_FEE_SCHEDULE, replaced field by field by the env var
 * FEE_SCHEDULE (JSON, same shape, every part optional); a merchant override is applied on top.
 */
export const PAYMENT_METHODS = ['card', 'wallet'] as const;
export type PaymentMethodType = (typeof PAYMENT_METHODS)[number];

export interface FeeRate {
  /** Percentage in basis points: 290 = 2.90 %. Integer 0–10 000. */
  percent_bps: number;
  /** Fixed part in minor units of a 2-decimal currency, scaled by exponent. */
  fixed: number;
  /** Fixed part in the currency's own minor units, overriding the scaled `fixed`. */
  fixed_by_currency?: Record<string, number>;
}

export type FeeSchedule = Record<PaymentMethodType, FeeRate>;
export type FeeScheduleOverride = { [M in PaymentMethodType]?: Partial<FeeRate> };

export const DEFAULT_FEE_SCHEDULE: FeeSchedule = {
  card: { percent_bps: 290, fixed: 30, fixed_by_currency: { JPY: 30, KRW: 300 } },
  wallet: { percent_bps: 180, fixed: 0 },
};

const minor = z.number().int().min(0).max(MAX_AMOUNT);
const rateSchema = z
  .object({
    percent_bps: z.number().int().min(0).max(10_000),
    fixed: minor,
    fixed_by_currency: z.record(z.string(), minor).superRefine((byCurrency, ctx) => {
      for (const code of Object.keys(byCurrency)) {
        if (!currency(code)) ctx.addIssue({ code: 'custom', path: [code], message: `'${code}' is not a payable ISO 4217 code such as USD` });
      }
    }),
  })
  .strict()
  .partial();
const overrideSchema = z.object({ card: rateSchema, wallet: rateSchema }).strict().partial();

/** Validates a schedule override (a merchant's, or FEE_SCHEDULE's); errors name the field and the fix. */
export function parseFeeSchedule(input: unknown): FeeScheduleOverride {
  const result = overrideSchema.safeParse(input);
  if (result.success) return result.data as FeeScheduleOverride;
  const issue = result.error.issues[0]!;
  const param = issue.path.join('.');
  const got = issue.path.reduce<unknown>((value, key) => (value as Record<PropertyKey, unknown> | undefined)?.[key], input);
  throw new InvalidRequestError(
    'invalid_fee_schedule',
    `Fee schedule field '${param || '(root)'}' is invalid: ${issue.message} (got ${describe(got)}). ` +
      'Use {"card"|"wallet": {"percent_bps": 0-10000, "fixed": minor units of a 2-decimal currency, "fixed_by_currency": {"JPY": 30}}}.',
    { param: param || undefined },
  );
}

export function mergeFeeSchedule(base: FeeSchedule, override: FeeScheduleOverride = {}): FeeSchedule {
  const merged = { ...base };
  for (const method of PAYMENT_METHODS) {
    const o = override[method];
    if (o) merged[method] = { ...base[method], ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
  }
  return merged;
}

let cached: { source: string | undefined; schedule: FeeSchedule } | undefined;

/** The platform default: DEFAULT_FEE_SCHEDULE with FEE_SCHEDULE applied (parsed once per value). */
export function platformFeeSchedule(env: NodeJS.ProcessEnv = process.env): FeeSchedule {
  const source = env.FEE_SCHEDULE;
  if (cached && cached.source === source) return cached.schedule;
  let override: FeeScheduleOverride = {};
  if (source !== undefined && source.trim() !== '') {
    try {
      override = parseFeeSchedule(JSON.parse(source));
    } catch (error) {
      throw new InternalError('invalid_fee_schedule_config', `Environment variable FEE_SCHEDULE is not a valid fee schedule: ${(error as Error).message}`, { cause: error });
    }
  }
  const schedule = mergeFeeSchedule(DEFAULT_FEE_SCHEDULE, override);
  cached = { source, schedule };
  return schedule;
}

/** The schedule that applies to a merchant: the platform default with the merchant's override on top. */
export function resolveFeeSchedule(merchantOverride?: FeeScheduleOverride, platform: FeeSchedule = platformFeeSchedule()): FeeSchedule {
  return mergeFeeSchedule(platform, merchantOverride);
}

/** The fixed part of `rate` in `currencyCode`'s minor units. */
export function fixedFee(rate: FeeRate, currencyCode: string): number {
  const explicit = rate.fixed_by_currency?.[currencyCode];
  if (explicit !== undefined) return explicit;
  const exponent = exponentOf(currencyCode);
  const fixed = BigInt(rate.fixed);
  if (exponent >= 2) return Number(fixed * 10n ** BigInt(exponent - 2));
  return Number(divRoundHalfUp(fixed, 10n ** BigInt(2 - exponent)));
}

/**
 * One payment's rate, taken from the schedule when the payer pays and stored on the order, so that a
 * later capture charges what was in force then. `fixed` is already in the payment currency's minor units.
 */
export interface PaymentFeeRate {
  method: PaymentMethodType;
  percent_bps: number;
  fixed: number;
}

export function paymentFeeRate(schedule: FeeSchedule, method: PaymentMethodType, currencyCode: string): PaymentFeeRate {
  const rate = schedule[method];
  if (!rate) throw new InternalError('ledger_invalid_method', `No fee rate for payment method '${method}'; expected one of ${PAYMENT_METHODS.join(', ')}.`);
  return { method, percent_bps: rate.percent_bps, fixed: fixedFee(rate, currencyCode) };
}

/** The fee on `amount` minor units at a payment's rate: integer, 0 ≤ fee ≤ amount. */
export function feeAt(amount: number, rate: PaymentFeeRate): number {
  if (!Number.isSafeInteger(amount) || amount < 0) {
    throw new InternalError('ledger_invalid_amount', `Fee asked for amount ${amount}; amounts are non-negative integers of minor units.`);
  }
  const percent = divRoundHalfUp(BigInt(amount) * BigInt(rate.percent_bps), 10_000n);
  const fee = percent + BigInt(rate.fixed);
  return Number(fee < BigInt(amount) ? fee : BigInt(amount));
}

/** The fee on a payment of `amount` minor units: integer, 0 ≤ fee ≤ amount. */
export function computeFee(input: { amount: number; currency: string; method: PaymentMethodType }, schedule: FeeSchedule): number {
  return feeAt(input.amount, paymentFeeRate(schedule, input.method, input.currency));
}

/** ⌊n / d + ½⌋ for n ≥ 0, d > 0: halves round up. */
function divRoundHalfUp(n: bigint, d: bigint): bigint {
  return (2n * n + d) / (2n * d);
}

function exponentOf(code: string): number {
  const cur = currency(code);
  if (!cur) throw new InternalError('ledger_invalid_currency', `Currency '${code}' is not a payable ISO 4217 code.`);
  return cur.exponent;
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
