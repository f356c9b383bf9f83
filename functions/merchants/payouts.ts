import * as z from 'zod';
import { InternalError, InvalidRequestError } from '../commons/errors';
import { currency } from '../commons/money';
import { DEFAULT_DELAY_DAYS, MAX_DELAY_DAYS } from '../settlements/calendar';

/**
 * A merchant's payout settings (the merchant item's `payout` attribute): where and when settlement pays it.
 *
 *   settlement_currency      what its settlements pay in (orders in other currencies are converted at confirm);
 *                            absent: the platform's SETTLEMENT_CURRENCY (default USD)
 *   delay_days               0–30: an entry becomes available delay_days business days after its own (T+1 default)
 *   bank_account_ciphertext  the account number, sealed (commons/crypto.ts, purpose 'bank_account', bound to the
 *                            merchant): only the payout channel opens it
 *   bank_account_last4       the only part of it ever shown (CLI, API, reports, logs)
 *
 * Only what the operator set is stored; defaults apply when read, so a platform default that changes applies to
 * every merchant that never chose.
 */
export interface PayoutSettingsItem {
  settlement_currency?: string;
  delay_days?: number;
  bank_account_ciphertext?: Uint8Array;
  bank_account_last4?: string;
  /** Bumped by every change; each change is conditioned on the version it read. */
  version: number;
  updated_at: string;
}

/** The settings with defaults applied: what settlement, the balance and confirm read. */
export interface PayoutSettings {
  settlement_currency: string;
  delay_days: number;
  bank_account_last4?: string;
  bank_account_ciphertext?: Uint8Array;
}

export const DEFAULT_SETTLEMENT_CURRENCY = 'USD';
/** The encryption-context purpose of a sealed bank account (the operator may seal it, never open it). */
export const BANK_ACCOUNT_PURPOSE = 'bank_account';

/** The platform's settlement currency: SETTLEMENT_CURRENCY, or USD. */
export function platformSettlementCurrency(env: NodeJS.ProcessEnv = process.env): string {
  const code = env.SETTLEMENT_CURRENCY?.trim() || DEFAULT_SETTLEMENT_CURRENCY;
  if (!currency(code)) {
    throw new InternalError('invalid_settlement_currency', `SETTLEMENT_CURRENCY '${code}' is not a payable ISO 4217 code; use e.g. USD, EUR or JPY.`);
  }
  return code;
}

export function withDefaults(item: PayoutSettingsItem | undefined, env: NodeJS.ProcessEnv = process.env): PayoutSettings {
  return {
    settlement_currency: item?.settlement_currency ?? platformSettlementCurrency(env),
    delay_days: item?.delay_days ?? DEFAULT_DELAY_DAYS,
    ...(item?.bank_account_last4 ? { bank_account_last4: item.bank_account_last4 } : {}),
    ...(item?.bank_account_ciphertext ? { bank_account_ciphertext: item.bank_account_ciphertext } : {}),
  };
}

const BANK_ACCOUNT = /^\d{6,34}$/;
const WHOLE_DAYS = `Use a whole number of business days from 0 to ${MAX_DELAY_DAYS}, e.g. 1.`;

const inputSchema = z.object({
  currency: z
    .string()
    .transform((s) => s.trim().toUpperCase())
    .refine((s) => currency(s) !== undefined, 'Use a payable ISO 4217 code, e.g. USD, EUR or JPY.')
    .optional(),
  // The CLI passes text; a number-looking string is taken as the number it spells, anything else is refused.
  delayDays: z
    .preprocess((v) => (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v), z.number({ error: WHOLE_DAYS }).int(WHOLE_DAYS).min(0, `Use 0 to ${MAX_DELAY_DAYS}.`).max(MAX_DELAY_DAYS, `Use 0 to ${MAX_DELAY_DAYS}.`))
    .optional(),
  // Spaces and hyphens are how people group account numbers; they are not part of it.
  bankAccount: z
    .string()
    .transform((s) => s.replace(/[\s-]/g, ''))
    .refine((s) => BANK_ACCOUNT.test(s), 'Use the account number as 6 to 34 digits (spaces and hyphens are ignored), e.g. --bank-account 000123456789.')
    .optional(),
});

export interface PayoutSettingsInput {
  currency?: string;
  delay_days?: number;
  /** Plaintext: seal it before it goes anywhere. */
  bank_account?: string;
}

const PARAMS: Record<string, string> = { currency: 'currency', delayDays: 'delay_days', bankAccount: 'bank_account' };

/**
 * Validates the operator's input; at least one setting must be given. An invalid bank account is described by
 * its length and last digits only: the number itself never travels into an error, a terminal log or a ticket.
 */
export function parsePayoutSettings(input: { currency?: unknown; delayDays?: unknown; bankAccount?: unknown }): PayoutSettingsInput {
  const result = inputSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    const param = PARAMS[key] ?? key;
    const value = (input as Record<string, unknown>)[key];
    const got = key === 'bankAccount' ? maskedDescription(value) : JSON.stringify(value) ?? String(value);
    throw new InvalidRequestError('parameter_invalid', `Invalid '${param}': got ${got}. ${issue.message}`, { param });
  }
  const { currency: code, delayDays, bankAccount } = result.data;
  if (code === undefined && delayDays === undefined && bankAccount === undefined) {
    throw new InvalidRequestError(
      'parameter_missing',
      "Give at least one of 'currency', 'delay_days' or 'bank_account', e.g. --currency USD --delay-days 1 --bank-account 000123456789.",
      { param: 'currency' },
    );
  }
  return {
    ...(code !== undefined ? { currency: code } : {}),
    ...(delayDays !== undefined ? { delay_days: delayDays } : {}),
    ...(bankAccount !== undefined ? { bank_account: bankAccount } : {}),
  };
}

function maskedDescription(value: unknown): string {
  if (typeof value !== 'string') return `a ${typeof value}`;
  const text = value.replace(/[\s-]/g, '');
  return `${text.length} characters${text.length >= 4 ? ` ending in ${text.slice(-4)}` : ''}`;
}

/** How long a container trusts payout settings it read. */
export const PAYOUT_SETTINGS_TTL_MS = 60_000;
const MAX_CACHED = 1_000;

/**
 * Payout settings cached per container (like payments/merchant-fees.ts) for `ttlMs`: confirm reads the
 * settlement currency on the payer's critical path, and settings change only when an operator runs the CLI. A
 * change reaches a warm container up to `ttlMs` late. Settling never uses this: it reads them strongly.
 */
export function cachedPayoutSettings(
  load: (merchantId: string) => Promise<PayoutSettings>,
  ttlMs = PAYOUT_SETTINGS_TTL_MS,
  clock: () => number = Date.now,
): (merchantId: string) => Promise<PayoutSettings> {
  const cache = new Map<string, { until: number; settings: PayoutSettings }>();
  return async (merchantId) => {
    const hit = cache.get(merchantId);
    if (hit && hit.until > clock()) return hit.settings;
    const settings = await load(merchantId);
    cache.delete(merchantId);
    if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
    cache.set(merchantId, { until: clock() + ttlMs, settings });
    return settings;
  };
}
