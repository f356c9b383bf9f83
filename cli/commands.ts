import type { FeeScheduleOverride } from '../functions/ledger/fees';
import { createMerchant, createRestrictedKey, revokeKey, rollKey, setMerchantFees, setPayoutSettings, setRateLimits, setReceipts, type PayoutSettingsView } from '../functions/merchants/service';
import type { Scope } from '../functions/merchants/scopes';
import type { MerchantLimits } from '../functions/merchants/usage';
import { appliedRate, formatDecimal, listRates, parseRate, setRate, type FxRate, type SetRateInput } from '../functions/fx';
import type { Target } from './target';

/**
 * The CLI's commands as functions, for tests and scripts: they return what `--json` prints.
 * The secret key is revealed here and only here, because printing it once is the point.
 */
export interface MerchantCreated {
  object: 'merchant';
  id: string;
  name: string;
  created_at: string;
  livemode: false;
  key_id: string;
  secret_key: string;
  /** Only when created with --fees. */
  fee_schedule?: FeeScheduleOverride;
}

export async function merchantsCreate(target: Target, input: { name: unknown; fees?: unknown }): Promise<MerchantCreated> {
  const created = await createMerchant(target.merchants, input);
  return {
    object: 'merchant',
    ...created.merchant,
    livemode: false,
    key_id: created.keyId,
    secret_key: created.secretKey.reveal(),
  };
}

export interface MerchantFees {
  object: 'merchant';
  id: string;
  name: string;
  created_at: string;
  /** null: no override, the platform default applies. */
  fee_schedule: FeeScheduleOverride | null;
}

export async function merchantsFeesSet(target: Target, input: { merchantId: unknown; fees: unknown }): Promise<MerchantFees> {
  const merchant = await setMerchantFees(target.merchants, input);
  return { object: 'merchant', ...merchant, fee_schedule: merchant.fee_schedule ?? null };
}

export interface KeyRolled {
  merchant_id: string;
  key_id: string;
  secret_key: string;
  revoked_key_ids: string[];
  /** False if the flush failed: the revoked keys keep working until the cache TTL (300 s) runs out. */
  authorizer_cache_flushed: boolean;
  authorizer_cache_error?: string;
}

export async function keysRoll(target: Target, input: { merchantId: unknown }): Promise<KeyRolled> {
  const rolled = await rollKey(target.merchants, input);
  return flushed(target, {
    merchant_id: rolled.merchantId,
    key_id: rolled.keyId,
    secret_key: rolled.secretKey.reveal(),
    revoked_key_ids: rolled.revokedKeyIds,
  });
}

export interface RestrictedKeyCreated {
  object: 'api_key';
  merchant_id: string;
  key_id: string;
  /** rk_test_…, shown once. */
  restricted_key: string;
  scopes: Scope[];
}

export async function keysCreate(target: Target, input: { merchantId: unknown; scopes: unknown }): Promise<RestrictedKeyCreated> {
  const created = await createRestrictedKey(target.merchants, input);
  return { object: 'api_key', merchant_id: created.merchantId, key_id: created.keyId, restricted_key: created.secretKey.reveal(), scopes: created.scopes };
}

export interface KeyRevoked {
  merchant_id: string;
  key_id: string;
  kind: 'secret' | 'restricted';
  /** False: it was already revoked. */
  revoked: boolean;
  authorizer_cache_flushed: boolean;
  authorizer_cache_error?: string;
}

export async function keysRevoke(target: Target, input: { keyId: unknown }): Promise<KeyRevoked> {
  const revoked = await revokeKey(target.merchants, input);
  return flushed(target, { merchant_id: revoked.merchantId, key_id: revoked.keyId, kind: revoked.kind, revoked: revoked.revoked });
}

/** Flushes the authorizer cache after a committed key change, so the revoked key gets 401 at once. */
async function flushed<T extends object>(target: Target, result: T): Promise<T & { authorizer_cache_flushed: boolean; authorizer_cache_error?: string }> {
  try {
    await target.flushAuthorizerCache();
    return { ...result, authorizer_cache_flushed: true };
  } catch (error) {
    // The change is committed (a new key may exist only in this result): report, never throw it away.
    return { ...result, authorizer_cache_flushed: false, authorizer_cache_error: (error as Error).message || (error as Error).name };
  }
}

export interface MerchantLimitsSet extends MerchantLimits {
  merchant_id: string;
  usage_plan_id: string;
}

export async function merchantsLimitsSet(target: Target, input: { merchantId: unknown; rateLimit: unknown; burstLimit: unknown }): Promise<MerchantLimitsSet> {
  const set = await setRateLimits(target.merchants, input);
  return { merchant_id: set.merchantId, rateLimit: set.rateLimit, burstLimit: set.burstLimit, usage_plan_id: set.usagePlanId };
}

export interface MerchantReceiptsSet {
  merchant_id: string;
  receipts: { email: boolean; sms: boolean };
}

export async function merchantsReceiptsSet(target: Target, input: { merchantId: unknown; email?: unknown; sms?: unknown }): Promise<MerchantReceiptsSet> {
  const set = await setReceipts(target.merchants, input);
  return { merchant_id: set.merchantId, receipts: set.receipts };
}

export interface MerchantPayoutsSet {
  merchant_id: string;
  /** Defaults applied; the bank account as its last 4 digits only (null: none on file yet). */
  payout: PayoutSettingsView;
}

export async function merchantsPayoutsSet(
  target: Target,
  input: { merchantId: unknown; currency?: unknown; delayDays?: unknown; bankAccount?: unknown },
): Promise<MerchantPayoutsSet> {
  const set = await setPayoutSettings(target.merchants, input);
  return { merchant_id: set.merchantId, payout: set.payout };
}

export interface FxRateSet {
  object: 'fx_rate';
  rate: FxRate;
  /** The rate merchants are converted at: rate × (1 − markup). */
  applied_rate: string;
  /** False: the same rate was already set at that time (nothing changed). */
  created: boolean;
}

export async function fxSet(target: Target, input: SetRateInput): Promise<FxRateSet> {
  const set = await setRate(target.merchants, input);
  return { object: 'fx_rate', rate: set.rate, applied_rate: formatDecimal(appliedRate(parseRate(set.rate.rate), set.rate.markup_bps)), created: set.created };
}

export async function fxList(target: Target, pair?: { from: unknown; to: unknown }): Promise<FxRate[]> {
  return listRates(target.merchants, pair);
}
