import type { FeeScheduleOverride } from '../functions/ledger/fees';
import { createMerchant, rollKey, setMerchantFees } from '../functions/merchants/service';
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
  const result: KeyRolled = {
    merchant_id: rolled.merchantId,
    key_id: rolled.keyId,
    secret_key: rolled.secretKey.reveal(),
    revoked_key_ids: rolled.revokedKeyIds,
    authorizer_cache_flushed: true,
  };
  try {
    await target.flushAuthorizerCache();
  } catch (error) {
    // The roll is committed and its key exists only in this result: report, never throw it away.
    result.authorizer_cache_flushed = false;
    result.authorizer_cache_error = (error as Error).message || (error as Error).name;
  }
  return result;
}
