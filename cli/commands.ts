import { InvalidRequestError, NotFoundError } from '../functions/commons/errors';
import { indexedAccounts } from '../functions/ledger/balance';
import type { FeeScheduleOverride } from '../functions/ledger/fees';
import { settlementIdSchema, settlementObject } from '../functions/settlements/api';
import { storedReport, walkReport } from '../functions/settlements/report';
import type { Settlement } from '../functions/settlements/settlement';
import { SettlementStore } from '../functions/settlements/store';
import { createMerchant, createRestrictedKey, revokeKey, rollKey, setMerchantFees, setPayoutSettings, setRateLimits, setReceipts, type PayoutSettingsView } from '../functions/merchants/service';
import type { Scope } from '../functions/merchants/scopes';
import type { MerchantLimits } from '../functions/merchants/usage';
import { appliedRate, formatDecimal, listRates, parseRate, setRate, type FxRate, type SetRateInput } from '../functions/fx';
import { randomUUID } from 'node:crypto';
import type { AuditContext } from '../functions/audit/context';
import type { Target } from './target';

/**
 * TEMPORARY — the one place the CLI says who it is to the audit trail. The principal here is the CLI's own claim
 * (the target's label), which issue 11 forbids long-term: the operator strand moves these writes to the
 * IAM-authorized operator routes, whose handlers build `{ actor: { type: 'operator', principal: userArn }, requestId }`
 * from API Gateway's request context, and then deletes this function.
 */
export function cliAuditContext(target: Pick<Target, 'kind' | 'label'>): AuditContext {
  return { actor: { type: 'operator', principal: target.kind === 'local' ? 'local-operator' : `cli:${target.label}` }, requestId: `cli-${randomUUID()}` };
}

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
  const created = await createMerchant(target.merchants, input, {}, cliAuditContext(target));
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
  const merchant = await setMerchantFees(target.merchants, input, cliAuditContext(target));
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
  const rolled = await rollKey(target.merchants, input, cliAuditContext(target));
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
  const created = await createRestrictedKey(target.merchants, input, cliAuditContext(target));
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
  const revoked = await revokeKey(target.merchants, input, cliAuditContext(target));
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
  const set = await setRateLimits(target.merchants, input, cliAuditContext(target));
  return { merchant_id: set.merchantId, rateLimit: set.rateLimit, burstLimit: set.burstLimit, usage_plan_id: set.usagePlanId };
}

export interface MerchantReceiptsSet {
  merchant_id: string;
  receipts: { email: boolean; sms: boolean };
}

export async function merchantsReceiptsSet(target: Target, input: { merchantId: unknown; email?: unknown; sms?: unknown }): Promise<MerchantReceiptsSet> {
  const set = await setReceipts(target.merchants, input, cliAuditContext(target));
  return { merchant_id: set.merchantId, receipts: set.receipts };
}

// ── Settlements (read-only: the operator's view of any merchant's settlements) ──────────────────────────

const storeOf = (target: Target) => new SettlementStore({ db: target.merchants.db, table: target.merchants.tableName });

export type SettlementShown = ReturnType<typeof settlementObject>;

const shown = (s: Settlement): SettlementShown => settlementObject(s);

/** One merchant's settlements, newest first; without a merchant, every merchant's (one Query each), merged. */
export async function settlementsList(target: Target, input: { merchantId?: string; limit?: number }): Promise<SettlementShown[]> {
  const limit = input.limit ?? 20;
  const store = storeOf(target);
  if (input.merchantId !== undefined) {
    const merchantId = parseMerchantId(input.merchantId);
    return (await store.list(merchantId, { limit })).settlements.map(shown);
  }
  const merchants = new Set((await indexedAccounts({ db: target.merchants.db, table: target.merchants.tableName })).map((a) => a.merchant_id));
  const all = (await Promise.all([...merchants].map((m) => store.list(m, { limit })))).flatMap((p) => p.settlements);
  return all
    .sort((a, b) => (a.created_at === b.created_at ? (a.id < b.id ? 1 : -1) : a.created_at < b.created_at ? 1 : -1))
    .slice(0, limit)
    .map(shown);
}

export async function settlementsShow(target: Target, input: { id: string }): Promise<SettlementShown> {
  return shown(await settlementById(target, input.id));
}

export interface ReportWritten {
  settlement_id: string;
  lines: number;
  bytes: number;
  sha256: string;
  /** The digest the Report step stored, when it has run (always equal to sha256: a difference is an error). */
  stored_sha256: string | null;
  parts: number;
}

/** The whole report, line by line into `write`; refuses when it does not hash to the digest the Report step stored. */
export async function settlementsReport(target: Target, input: { id: string; write: (text: string) => void }): Promise<ReportWritten> {
  const s = await settlementById(target, input.id);
  const { report } = await walkReport(storeOf(target), s, { write: input.write });
  const stored = storedReport(s);
  if (stored && stored.sha256 !== report.sha256) {
    throw new Error(`The report of ${s.id} hashes to ${report.sha256}, but the Report step stored ${stored.sha256}: its entries changed since. Reconcile the settlement.`);
  }
  return { settlement_id: s.id, lines: report.lines, bytes: report.bytes, sha256: report.sha256, stored_sha256: stored?.sha256 ?? null, parts: report.parts.length };
}

async function settlementById(target: Target, id: string): Promise<Settlement> {
  const parsed = settlementIdSchema.safeParse(id);
  if (!parsed.success) {
    throw new InvalidRequestError('parameter_invalid', `Invalid settlement id '${id}': ${parsed.error.issues[0]!.message} List them with: payplane settlements list --merchant mch_…`, { param: 'id' });
  }
  const s = await storeOf(target).byId(id);
  if (!s) throw new NotFoundError('settlement', id);
  return s;
}

function parseMerchantId(id: string): string {
  if (!/^mch_[A-Za-z0-9]{1,64}$/.test(id)) {
    throw new InvalidRequestError('parameter_invalid', `Invalid --merchant '${id}': merchant ids look like mch_ followed by letters and digits.`, { param: 'merchant' });
  }
  return id;
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
  const set = await setPayoutSettings(target.merchants, input, cliAuditContext(target));
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
  const set = await setRate(target.merchants, input, undefined, cliAuditContext(target));
  return { object: 'fx_rate', rate: set.rate, applied_rate: formatDecimal(appliedRate(parseRate(set.rate.rate), set.rate.markup_bps)), created: set.created };
}

export async function fxList(target: Target, pair?: { from: unknown; to: unknown }): Promise<FxRate[]> {
  return listRates(target.merchants, pair);
}
