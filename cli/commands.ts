import { InvalidRequestError, NotFoundError } from '../functions/commons/errors';
import { indexedAccounts } from '../functions/ledger/balance';
import { settlementIdSchema, settlementObject } from '../functions/settlements/api';
import { storedReport, walkReport } from '../functions/settlements/report';
import type { Settlement } from '../functions/settlements/settlement';
import { SettlementStore } from '../functions/settlements/store';
import { listRates, type FxRate, type SetRateInput } from '../functions/fx';
import type {
  FxRateSet,
  KeyRevokedBody,
  KeyRolledBody,
  MerchantCreated,
  MerchantFees,
  MerchantLimitsSet,
  MerchantPayoutsSet,
  MerchantReceiptsSet,
  RestrictedKeyCreated,
} from '../functions/operator/operations';
import type { OperatorCommand } from '../functions/operator/routes';
import { operatorCall } from './operator-client';
import type { ErasureResult } from '../functions/orders/erase';
import type { Target } from './target';

/**
 * The CLI's commands as functions, for tests and scripts: they return what `--json` prints.
 * Changes are calls to the operator API (cli/operator-client.ts), which acts as the operator's IAM principal;
 * the secret key it returns once is revealed here, because printing it once is the point.
 */
export type { MerchantCreated, MerchantFees, RestrictedKeyCreated, MerchantLimitsSet, MerchantReceiptsSet, MerchantPayoutsSet, FxRateSet };

const call = async <T>(target: Target, command: OperatorCommand, options: { id?: string; body?: Record<string, unknown> } = {}) =>
  operatorCall<T>(await target.operator(), command, options);

/** A path segment the CLI was given: the route validates it and names the parameter. */
const id = (value: unknown) => (value === undefined ? undefined : String(value));

export async function merchantsCreate(target: Target, input: { name: unknown; fees?: unknown }): Promise<MerchantCreated> {
  return call(target, 'merchants create', { body: { name: input.name, fees: input.fees } });
}

export async function merchantsFeesSet(target: Target, input: { merchantId: unknown; fees: unknown }): Promise<MerchantFees> {
  return call(target, 'merchants fees set', { id: id(input.merchantId), body: { fees: input.fees } });
}

export interface KeyRolled extends KeyRolledBody {
  /** False if the flush failed: the revoked keys keep working until the cache TTL (300 s) runs out. */
  authorizer_cache_flushed: boolean;
  authorizer_cache_error?: string;
}

export async function keysRoll(target: Target, input: { merchantId: unknown }): Promise<KeyRolled> {
  return flushed(target, await call<KeyRolledBody>(target, 'keys roll', { id: id(input.merchantId) }));
}

export async function keysCreate(target: Target, input: { merchantId: unknown; scopes: unknown }): Promise<RestrictedKeyCreated> {
  return call(target, 'keys create', { id: id(input.merchantId), body: { scopes: input.scopes } });
}

export interface KeyRevoked extends KeyRevokedBody {
  authorizer_cache_flushed: boolean;
  authorizer_cache_error?: string;
}

export async function keysRevoke(target: Target, input: { keyId: unknown }): Promise<KeyRevoked> {
  return flushed(target, await call<KeyRevokedBody>(target, 'keys revoke', { id: id(input.keyId) }));
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

export async function merchantsLimitsSet(target: Target, input: { merchantId: unknown; rateLimit: unknown; burstLimit: unknown }): Promise<MerchantLimitsSet> {
  return call(target, 'merchants limits set', { id: id(input.merchantId), body: { rate_limit: input.rateLimit, burst_limit: input.burstLimit } });
}

export async function merchantsReceiptsSet(target: Target, input: { merchantId: unknown; email?: unknown; sms?: unknown }): Promise<MerchantReceiptsSet> {
  return call(target, 'merchants receipts set', { id: id(input.merchantId), body: { email: input.email, sms: input.sms } });
}

export async function merchantsPayoutsSet(
  target: Target,
  input: { merchantId: unknown; currency?: unknown; delayDays?: unknown; bankAccount?: unknown },
): Promise<MerchantPayoutsSet> {
  return call(target, 'merchants payouts set', {
    id: id(input.merchantId),
    body: { currency: input.currency, delay_days: input.delayDays, bank_account: input.bankAccount },
  });
}

/** Who set it is not sent: the operator API records the principal AWS authenticated. */
export async function fxSet(target: Target, input: Omit<SetRateInput, 'set_by'>): Promise<FxRateSet> {
  return call(target, 'fx set', { body: { from: input.from, to: input.to, rate: input.rate, markup_bps: input.markup_bps, effective_at: input.effective_at } });
}

/** Erases the payer's personal data from an order and what derives from it (functions/orders/erase.ts). */
export async function payersErase(target: Target, input: { orderId: unknown }): Promise<ErasureResult> {
  return call(target, 'payers erase', { id: id(input.orderId) });
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

export async function fxList(target: Target, pair?: { from: unknown; to: unknown }): Promise<FxRate[]> {
  return listRates(target.merchants, pair);
}
