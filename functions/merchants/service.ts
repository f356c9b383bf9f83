import { setTimeout as sleep } from 'node:timers/promises';
import { msg } from '../commons/messages';
import { AuthenticationError, ConflictError, ContendedError, InternalError, InvalidRequestError, NotFoundError } from '../commons/errors';
import { newId } from '../commons/ids';
import { Secret } from '../commons/secret';
import { parseFeeSchedule, type FeeScheduleOverride } from '../ledger/fees';
import { generateSecretKey, hashSecretKey, isSecretKey, keyHint, newKeyId, type KeyKind } from './keys';
import {
  apiKeyItem,
  apiKeyKey,
  feesUpdate,
  getApiKey,
  getApiKeyById,
  getMerchant,
  hashOfApiKeyItem,
  keyIdItem,
  listActiveSecretKeys,
  merchantItem,
  merchantKey,
  payoutUpdate,
  receiptsUpdate,
  RECEIPTS_OFF,
  type MerchantDeps,
  type ReceiptSettings,
  type MerchantItem,
  type TransactItems,
} from './repository';
import { BANK_ACCOUNT_PURPOSE, parsePayoutSettings, withDefaults, type PayoutSettingsItem } from './payouts';
import { ALL_SCOPES, parseScopes, type Scope } from './scopes';
import { ensureUsageKey, setMerchantLimits, type MerchantLimits } from './usage';
import { validateMerchantId, validateMerchantName } from './validation';
import { commitAudited, type AuditChange } from '../audit/append';
import type { AuditContext } from '../audit/context';
import { mask } from '../audit/mask';

/**
 * Merchant and API-key operations, used by the operator CLI, the local cloud's demo seeding and
 * the authorizer. Each follows the same skeleton: validate → load → decide → persist. Every change is persisted
 * with its audit entry in the same transaction (functions/audit/append.ts commitAudited), `by` naming who made it.
 */
export type { MerchantDeps } from './repository';

export interface Merchant {
  id: string;
  name: string;
  created_at: string;
  /** Only when the merchant has an override of the platform fee schedule. */
  fee_schedule?: FeeScheduleOverride;
}

export interface IssuedKey {
  merchantId: string;
  keyId: string;
  /** Shown once: only its sha256 is stored. `reveal()` it only to print it for the operator. */
  secretKey: Secret<string>;
}

export interface CreatedMerchant extends IssuedKey {
  merchant: Merchant;
}

export interface RolledKey extends IssuedKey {
  revokedKeyIds: string[];
}

export interface RestrictedKey extends IssuedKey {
  scopes: Scope[];
}

export interface RevokedKey {
  merchantId: string;
  keyId: string;
  kind: KeyKind;
  /** False when the key was already revoked (nothing changed). */
  revoked: boolean;
}

export interface AuthenticatedKey {
  merchantId: string;
  keyId: string;
  livemode: false;
  /** `*` for a secret key; a restricted key's scopes, comma-separated (the authorizer's context is strings). */
  scopes: string;
}

export const DEMO_MERCHANT_ID = 'mch_demo';
export const DEMO_MERCHANT_NAME = 'Demo merchant';
const DEMO_RECEIPTS: ReceiptSettings = { email: true, sms: true };

/** Attempts for a roll whose transaction met a transient conflict or a lagging gsi1. */
const ROLL_ATTEMPTS = 8;

const timestamp = (deps: MerchantDeps) => (deps.now?.() ?? new Date()).toISOString();

/** Commits `items` with the merchant's audit entry of `action` (masked before and after). */
const audited = (deps: MerchantDeps, items: TransactItems, by: AuditContext, change: Omit<AuditChange, 'before' | 'after'> & { before?: unknown; after?: unknown }) =>
  commitAudited(deps, items, { ...change, before: mask(change.before), after: mask(change.after) }, by);

const merchantTarget = (id: string) => ({ type: 'merchant', id });
const keyTarget = (id: string) => ({ type: 'api_key', id });

/**
 * Creates a merchant and its first secret key in one transaction, with an optional fee override
 * (`fees`, see ledger/fees.ts). `options.id` is for fixed ids (the demo).
 */
export async function createMerchant(
  deps: MerchantDeps,
  input: { name: unknown; fees?: unknown },
  options: { id?: string; receipts?: ReceiptSettings },
  by: AuditContext,
): Promise<CreatedMerchant> {
  // validate
  const name = validateMerchantName(input.name);
  const feeSchedule = input.fees === undefined ? undefined : feeOverride(input.fees);
  const id = options.id === undefined ? newId('mch') : validateMerchantId(options.id, 'id');
  // decide
  const createdAt = timestamp(deps);
  const secretKey = generateSecretKey();
  const keyId = newKeyId();
  const keyHash = hashSecretKey(secretKey);
  // persist: the API Gateway key first, so a merchant that exists can always call (an orphan key is harmless)
  if (deps.usage) await ensureUsageKey(deps.usage, id);
  const result = await audited(deps, [
    {
      Put: {
        TableName: deps.tableName,
        Item: merchantItem({ id, name, createdAt, keyId, keyHash, feeSchedule, receipts: options.receipts }),
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    },
    {
      Put: {
        TableName: deps.tableName,
        Item: apiKeyItem({ keyId, keyHash, merchantId: id, createdAt }),
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    },
    { Put: { TableName: deps.tableName, Item: keyIdItem({ keyId, keyHash, merchantId: id }), ConditionExpression: 'attribute_not_exists(pk)' } },
  ], by, {
    action: 'merchant.created',
    merchantId: id,
    target: merchantTarget(id),
    after: { id, name, fee_schedule: feeSchedule ?? null, receipts: options.receipts ?? RECEIPTS_OFF, key_id: keyId },
  });
  if (!result.committed) {
    if (result.reasons[0] === 'ConditionalCheckFailed') {
      throw new ConflictError('merchant_exists', `Merchant '${id}' already exists. Roll its key instead of creating it again.`, {
        param: 'id',
      });
    }
    throw new InternalError('merchant_create_failed', `Creating merchant ${id} was cancelled: ${result.reasons.join(', ')}`);
  }
  return { merchant: { id, name, created_at: createdAt, ...(feeSchedule ? { fee_schedule: feeSchedule } : {}) }, merchantId: id, keyId, secretKey };
}

/**
 * Replaces a merchant's fee override as a whole (`{}` removes it: the platform default applies). Payments
 * confirmed before keep the rate they were confirmed with; payment functions see the change within their
 * cache TTL (payments/service.ts).
 */
export async function setMerchantFees(deps: MerchantDeps, input: { merchantId: unknown; fees: unknown }, by: AuditContext): Promise<Merchant> {
  // validate
  const merchantId = validateMerchantId(input.merchantId);
  const feeSchedule = feeOverride(input.fees);
  // load (the override before, for the audit trail)
  const merchant = await getMerchant(deps, merchantId);
  if (!merchant) throw new NotFoundError('merchant', merchantId, 'merchant_id');
  // persist (conditioned on the merchant existing: an unknown id is refused, never created)
  const result = await audited(deps, [feesUpdate(deps, merchantId, feeSchedule)], by, {
    action: 'merchant.fees_set',
    merchantId,
    target: merchantTarget(merchantId),
    before: { fee_schedule: merchant.fee_schedule ?? null },
    after: { fee_schedule: feeSchedule ?? null },
  });
  if (!result.committed) {
    if (result.reasons[0] === 'ConditionalCheckFailed') throw new NotFoundError('merchant', merchantId, 'merchant_id');
    throw new ContendedError('merchant_contended', `Setting the fees of ${merchantId} was cancelled (${result.reasons.join(', ')}); nothing changed. Run it again.`);
  }
  return { id: merchant.id, name: merchant.name, created_at: merchant.created_at, ...(feeSchedule ? { fee_schedule: feeSchedule } : {}) };
}

/**
 * Turns payer receipts on or off per channel (`email`, `sms`: 'on' | 'off' | boolean; a channel not given keeps
 * its setting). The receipts sender reads the setting for every event, so it applies to the next payment.
 */
export async function setReceipts(deps: MerchantDeps, input: { merchantId: unknown; email?: unknown; sms?: unknown }, by: AuditContext): Promise<{ merchantId: string; receipts: ReceiptSettings }> {
  // validate
  const merchantId = validateMerchantId(input.merchantId);
  const email = onOff(input.email, 'email');
  const sms = onOff(input.sms, 'sms');
  if (email === undefined && sms === undefined) {
    throw new InvalidRequestError('parameter_missing', "Give 'email' and/or 'sms' as on or off, e.g. --email on --sms off.", { param: 'email' });
  }
  // load
  const merchant = await getMerchant(deps, merchantId);
  if (!merchant) throw new NotFoundError('merchant', merchantId, 'merchant_id');
  // decide
  const current = merchant.receipts ?? RECEIPTS_OFF;
  const receipts = { email: email ?? current.email, sms: sms ?? current.sms };
  // persist (conditioned on the settings being those read)
  const result = await audited(deps, [receiptsUpdate(deps, merchantId, receipts, merchant.receipts)], by, {
    action: 'merchant.receipts_set',
    merchantId,
    target: merchantTarget(merchantId),
    before: { receipts: current },
    after: { receipts },
  });
  if (!result.committed) {
    throw new ContendedError('receipts_conflict', `The receipt settings of merchant '${merchantId}' changed while this command ran; nothing was changed by it. Run it again.`, {
      param: 'merchant_id',
    });
  }
  return { merchantId, receipts };
}

/** What `payouts set` shows of the settings: defaults applied, the bank account as its last 4 only. */
export interface PayoutSettingsView {
  settlement_currency: string;
  delay_days: number;
  bank_account_last4: string | null;
}

/**
 * Sets a merchant's payout settings (`currency`, `delayDays`, `bankAccount`; a setting not given keeps its
 * value). The bank account is sealed before anything is written, bound to the merchant, and kept with its last 4
 * digits; the plaintext is never stored, returned or logged. Settlement reads the settings on its next run;
 * a changed delay moves when later entries become available, never entries already settled.
 */
export async function setPayoutSettings(
  deps: MerchantDeps,
  input: { merchantId: unknown; currency?: unknown; delayDays?: unknown; bankAccount?: unknown },
  by: AuditContext,
): Promise<{ merchantId: string; payout: PayoutSettingsView }> {
  // validate
  const merchantId = validateMerchantId(input.merchantId);
  const settings = parsePayoutSettings({ currency: input.currency, delayDays: input.delayDays, bankAccount: input.bankAccount });
  if (settings.bank_account !== undefined && !deps.seal) {
    throw new InternalError('seal_unavailable', 'Setting a bank account needs a KMS sealer (deps.seal); this caller has none.');
  }
  // load
  const merchant = await getMerchant(deps, merchantId);
  if (!merchant) throw new NotFoundError('merchant', merchantId, 'merchant_id');
  // decide
  const current = merchant.payout;
  const next: PayoutSettingsItem = { ...current, version: (current?.version ?? 0) + 1, updated_at: timestamp(deps) };
  if (settings.currency !== undefined) next.settlement_currency = settings.currency;
  if (settings.delay_days !== undefined) next.delay_days = settings.delay_days;
  if (settings.bank_account !== undefined) {
    next.bank_account_ciphertext = await deps.seal!(new Secret(settings.bank_account), { purpose: BANK_ACCOUNT_PURPOSE, merchantId, recordId: merchantId });
    next.bank_account_last4 = settings.bank_account.slice(-4);
  }
  // persist (conditioned on the settings being those read)
  const result = await audited(deps, [payoutUpdate(deps, merchantId, next, current?.version)], by, {
    action: 'merchant.payouts_set',
    merchantId,
    target: merchantTarget(merchantId),
    before: { payout: payoutView(current) },
    after: { payout: payoutView(next) },
  });
  if (!result.committed) {
    const now = await getMerchant(deps, merchantId);
    if (!now) throw new NotFoundError('merchant', merchantId, 'merchant_id');
    throw new ConflictError(
      'payout_settings_conflict',
      `The payout settings of merchant '${merchantId}' changed while this command ran (updated at ${now.payout?.updated_at ?? 'an unknown time'}); nothing was changed by it. Run it again.`,
      { param: 'merchant_id' },
    );
  }
  return { merchantId, payout: payoutView(next) };
}

/** The settings with defaults applied, the bank account as its last 4 only: what `payouts set` shows and the audit trail keeps. */
function payoutView(payout: PayoutSettingsItem | undefined): PayoutSettingsView {
  const view = withDefaults(payout);
  return { settlement_currency: view.settlement_currency, delay_days: view.delay_days, bank_account_last4: view.bank_account_last4 ?? null };
}

function onOff(value: unknown, param: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === true || value === 'on') return true;
  if (value === false || value === 'off') return false;
  throw new InvalidRequestError('parameter_invalid', `Invalid '${param}': got ${JSON.stringify(value)}. Use on or off, e.g. --${param} on.`, { param });
}

/**
 * Overrides a merchant's rate limit (its own usage plan, usage.ts), up to the account-region limits. The new
 * limits apply to the merchant's next requests: API Gateway reads the plan per request, not per cached key.
 */
export async function setRateLimits(
  deps: MerchantDeps,
  input: { merchantId: unknown; rateLimit: unknown; burstLimit: unknown },
  by: AuditContext,
): Promise<MerchantLimits & { merchantId: string; usagePlanId: string }> {
  // validate
  const merchantId = validateMerchantId(input.merchantId);
  if (!deps.usage) throw new InternalError('usage_unavailable', 'Rate limits need API Gateway (deps.usage); this caller has none.');
  // load
  if (!(await getMerchant(deps, merchantId))) throw new NotFoundError('merchant', merchantId, 'merchant_id');
  // persist (the limits live in API Gateway, which enforces them)
  const set = await setMerchantLimits(deps.usage, merchantId, { rateLimit: input.rateLimit, burstLimit: input.burstLimit } as MerchantLimits);
  // The entry alone, after API Gateway took the limits: a usage plan cannot join a DynamoDB transaction. Should
  // this append fail, the error says so; running the command again sets the same limits and records them.
  const result = await audited(deps, [], by, {
    action: 'merchant.limits_set',
    merchantId,
    target: merchantTarget(merchantId),
    after: { rate_limit: set.rateLimit, burst_limit: set.burstLimit, usage_plan_id: set.usagePlanId },
  });
  if (!result.committed) {
    throw new InternalError('limits_audit_failed', `The limits of ${merchantId} are set in API Gateway, but their audit entry was not written (${result.reasons.join(', ')}). Run the command again to record them.`);
  }
  return { merchantId, ...set };
}

/** A validated override; an empty one is no override. */
function feeOverride(input: unknown): FeeScheduleOverride | undefined {
  const parsed = parseFeeSchedule(input);
  return Object.keys(parsed).length ? parsed : undefined;
}

/**
 * Issues a new key and revokes every active one, atomically.
 *
 * Why concurrent rolls cannot leave two active keys: the transaction updates the merchant item
 * with `key_version = <the version read>` and bumps it, so of several rolls that read the same
 * version exactly one commits; the others are cancelled. The key to revoke comes from the
 * merchant item (strongly consistent), not only from gsi1, which may lag a roll that just
 * committed; each revocation is conditioned on the key still being active. A roll that loses to
 * another fails with a ConflictError instead of retrying, so a key this function returns was
 * the active key when it returned (retrying would silently revoke the key the winner just
 * handed to its operator). Transient cancellations (TransactionConflict, a stale gsi1 row)
 * are retried while the version is unchanged.
 */
export async function rollKey(deps: MerchantDeps, input: { merchantId: unknown }, by: AuditContext): Promise<RolledKey> {
  // validate
  const merchantId = validateMerchantId(input.merchantId);
  // Merchants created before rate limits get their API Gateway key on their next roll.
  if (deps.usage && (await getMerchant(deps, merchantId))) await ensureUsageKey(deps.usage, merchantId);
  let readVersion: number | undefined;
  for (let attempt = 1; ; attempt++) {
    // load
    const merchant = await getMerchant(deps, merchantId);
    if (!merchant) throw new NotFoundError('merchant', merchantId, 'merchant_id');
    // A merchant item written without the counter (a fixture) counts as version 0.
    const version = merchant.key_version ?? 0;
    readVersion ??= version;
    if (version !== readVersion) throw lostRoll(merchant);
    const listed = await listActiveSecretKeys(deps, merchantId);
    // decide
    const revoke = new Map<string, string>(); // key hash → key id
    if (merchant.active_key_hash && merchant.active_key_id) revoke.set(merchant.active_key_hash, merchant.active_key_id);
    for (const key of listed) revoke.set(hashOfApiKeyItem(key), key.key_id);
    if (revoke.size > 95) {
      // 100 actions per transaction, 2 of them the audit entry's; the invariant keeps one active key, so this is a data bug.
      throw new InternalError('too_many_active_keys', `Merchant ${merchantId} has ${revoke.size} active keys`);
    }
    const now = timestamp(deps);
    const secretKey = generateSecretKey();
    const keyId = newKeyId();
    const keyHash = hashSecretKey(secretKey);
    // persist
    const items: TransactItems = [
      {
        Update: {
          TableName: deps.tableName,
          Key: merchantKey(merchantId),
          UpdateExpression: 'SET active_key_id = :kid, active_key_hash = :khash, key_version = :next',
          ConditionExpression: readVersion === 0 ? 'attribute_exists(pk) AND attribute_not_exists(key_version)' : 'key_version = :read',
          ExpressionAttributeValues: {
            ':kid': keyId,
            ':khash': keyHash,
            ':next': readVersion + 1,
            ...(readVersion === 0 ? {} : { ':read': readVersion }),
          },
        },
      },
      {
        Put: {
          TableName: deps.tableName,
          Item: apiKeyItem({ keyId, keyHash, merchantId, createdAt: now }),
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      { Put: { TableName: deps.tableName, Item: keyIdItem({ keyId, keyHash, merchantId }), ConditionExpression: 'attribute_not_exists(pk)' } },
      ...[...revoke.keys()].map((hash) => ({
        Update: {
          TableName: deps.tableName,
          Key: apiKeyKey(hash),
          UpdateExpression: 'SET #status = :revoked, revoked_at = :now',
          ConditionExpression: '#status = :active AND merchant_id = :mid',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':revoked': 'revoked', ':active': 'active', ':now': now, ':mid': merchantId },
        },
      })),
    ];
    const result = await audited(deps, items, by, {
      action: 'api_key.rolled',
      merchantId,
      target: keyTarget(keyId),
      before: { active_key_ids: [...revoke.values()] },
      after: { key_id: keyId, kind: 'secret', revoked_key_ids: [...revoke.values()] },
    });
    if (result.committed) return { merchantId, keyId, secretKey, revokedKeyIds: [...revoke.values()] };
    if (result.reasons[0] === 'ConditionalCheckFailed') {
      const current = await getMerchant(deps, merchantId);
      throw current ? lostRoll(current) : new NotFoundError('merchant', merchantId, 'merchant_id');
    }
    if (attempt >= ROLL_ATTEMPTS) {
      throw new InternalError(
        'key_roll_failed',
        `Rolling the key of ${merchantId} was cancelled ${attempt} times (last: ${result.reasons.join(', ')})`,
      );
    }
    await sleep(Math.random() * Math.min(25 * 2 ** attempt, 500));
  }
}

function lostRoll(current: MerchantItem): ConflictError {
  return new ConflictError(
    'key_roll_conflict',
    `Another key roll for merchant '${current.id}' committed while this one was running, so this one changed nothing. ` +
      `The only active key is now ${current.active_key_id ?? 'the one it issued'}, held by whoever ran that roll; roll again if you need a key you hold.`,
    { param: 'merchant_id' },
  );
}

/** Resolves a secret key to its merchant. Throws AuthenticationError unless the key is known and active. */
export async function authenticate(deps: MerchantDeps, secretKey: Secret<string> | string): Promise<AuthenticatedKey> {
  const key = typeof secretKey === 'string' ? secretKey : secretKey.reveal();
  if (!isSecretKey(key)) {
    throw new AuthenticationError('api_key_malformed', msg['api_key_malformed.secret']());
  }
  const item = await getApiKey(deps, hashSecretKey(key));
  if (!item) {
    throw new AuthenticationError('api_key_unknown', msg.api_key_unknown({ hint: `${key.slice(0, 8)}${keyHint(key)}` }));
  }
  if (item.status !== 'active') {
    throw new AuthenticationError(
      'api_key_revoked',
      msg.api_key_revoked({ hint: `${key.slice(0, 8)}${keyHint(key)}` }),
      { extra: { key_id: item.key_id } },
    );
  }
  return {
    merchantId: item.merchant_id,
    keyId: item.key_id,
    livemode: false,
    scopes: item.kind === 'restricted' ? (item.scopes ?? []).join(',') : ALL_SCOPES,
  };
}

/**
 * Issues a restricted key (`rk_test_…`) limited to `scopes`. The merchant's secret key and other restricted
 * keys are untouched; `keys roll` never revokes it, `keys revoke` does.
 */
export async function createRestrictedKey(deps: MerchantDeps, input: { merchantId: unknown; scopes: unknown }, by: AuditContext): Promise<RestrictedKey> {
  // validate
  const merchantId = validateMerchantId(input.merchantId);
  const scopes = parseScopes(input.scopes);
  // load
  if (!(await getMerchant(deps, merchantId))) throw new NotFoundError('merchant', merchantId, 'merchant_id');
  if (deps.usage) await ensureUsageKey(deps.usage, merchantId);
  // decide
  const secretKey = generateSecretKey('restricted');
  const keyId = newKeyId();
  const keyHash = hashSecretKey(secretKey);
  // persist
  const result = await audited(deps, [
    { ConditionCheck: { TableName: deps.tableName, Key: merchantKey(merchantId), ConditionExpression: 'attribute_exists(pk)' } },
    {
      Put: {
        TableName: deps.tableName,
        Item: apiKeyItem({ keyId, keyHash, merchantId, createdAt: timestamp(deps), kind: 'restricted', scopes }),
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    },
    { Put: { TableName: deps.tableName, Item: keyIdItem({ keyId, keyHash, merchantId }), ConditionExpression: 'attribute_not_exists(pk)' } },
  ], by, { action: 'api_key.created', merchantId, target: keyTarget(keyId), after: { key_id: keyId, kind: 'restricted', scopes } });
  if (!result.committed) {
    if (result.reasons[0] === 'ConditionalCheckFailed') throw new NotFoundError('merchant', merchantId, 'merchant_id');
    throw new InternalError('key_create_failed', `Creating a restricted key for ${merchantId} was cancelled: ${result.reasons.join(', ')}`);
  }
  return { merchantId, keyId, secretKey, scopes };
}

/**
 * Revokes one key, secret or restricted, by its id. Revoking the active secret key also clears it from the
 * merchant (bumping key_version, so it cannot race a roll): the merchant then has no secret key until the
 * next `keys roll`. Revoking a revoked key changes nothing.
 */
export async function revokeKey(deps: MerchantDeps, input: { keyId: unknown }, by: AuditContext): Promise<RevokedKey> {
  // validate
  const keyId = typeof input.keyId === 'string' && /^key_[A-Za-z0-9]{1,64}$/.test(input.keyId) ? input.keyId : undefined;
  if (!keyId) {
    throw new InvalidRequestError(
      'parameter_invalid',
      `Invalid 'key': got ${JSON.stringify(input.keyId ?? null)}. Key ids are 'key_' followed by letters and digits, as printed when the key was created (never the key itself).`,
      { param: 'key' },
    );
  }
  for (let attempt = 1; ; attempt++) {
    // load
    const key = await getApiKeyById(deps, keyId);
    if (!key) throw new NotFoundError('API key', keyId, 'key');
    const kind: KeyKind = key.kind ?? 'secret';
    if (key.status !== 'active') return { merchantId: key.merchant_id, keyId, kind, revoked: false };
    const merchant = await getMerchant(deps, key.merchant_id);
    const hash = hashOfApiKeyItem(key);
    // decide
    const clearsActive = merchant?.active_key_hash === hash;
    const now = timestamp(deps);
    // persist
    const result = await audited(deps, [
      {
        Update: {
          TableName: deps.tableName,
          Key: apiKeyKey(hash),
          UpdateExpression: 'SET #status = :revoked, revoked_at = :now',
          ConditionExpression: '#status = :active',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':revoked': 'revoked', ':active': 'active', ':now': now },
        },
      },
      ...(clearsActive
        ? [
            {
              Update: {
                TableName: deps.tableName,
                Key: merchantKey(key.merchant_id),
                UpdateExpression: 'REMOVE active_key_id, active_key_hash SET key_version = :next',
                ConditionExpression: merchant.key_version === undefined ? 'attribute_not_exists(key_version)' : 'key_version = :read',
                ExpressionAttributeValues: {
                  ':next': (merchant.key_version ?? 0) + 1,
                  ...(merchant.key_version === undefined ? {} : { ':read': merchant.key_version }),
                },
              },
            },
          ]
        : []),
    ], by, {
      action: 'api_key.revoked',
      merchantId: key.merchant_id,
      target: keyTarget(keyId),
      before: { key_id: keyId, kind, status: 'active' },
      after: { key_id: keyId, kind, status: 'revoked', cleared_active_secret_key: clearsActive },
    });
    if (result.committed) return { merchantId: key.merchant_id, keyId, kind, revoked: true };
    // A concurrent roll or revoke changed the key or the merchant: read again and decide again.
    if (attempt >= ROLL_ATTEMPTS) {
      throw new InternalError('key_revoke_failed', `Revoking ${keyId} was cancelled ${attempt} times (last: ${result.reasons.join(', ')})`);
    }
  }
}

/**
 * The local cloud's demo merchant: created once with the fixed id `mch_demo`; since keys are
 * stored hashed, every call rolls and returns a fresh test key.
 */
export async function ensureDemoMerchant(deps: MerchantDeps, by: AuditContext): Promise<CreatedMerchant & { created: boolean }> {
  const existing = await getMerchant(deps, DEMO_MERCHANT_ID);
  if (!existing) {
    try {
      // The demo shows receipts: both channels on (they land in the local cloud's outbox).
      return { ...(await createMerchant(deps, { name: DEMO_MERCHANT_NAME }, { id: DEMO_MERCHANT_ID, receipts: DEMO_RECEIPTS }, by)), created: true };
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error; // created by a concurrent start: roll below
    }
  }
  // A demo merchant seeded before receipts existed gets them turned on once.
  if (existing && !existing.receipts) await setReceipts(deps, { merchantId: DEMO_MERCHANT_ID, ...DEMO_RECEIPTS }, by);
  const rolled = await rollKey(deps, { merchantId: DEMO_MERCHANT_ID }, by);
  const merchant = existing ?? (await getMerchant(deps, DEMO_MERCHANT_ID))!;
  return {
    merchant: { id: merchant.id, name: merchant.name, created_at: merchant.created_at },
    merchantId: rolled.merchantId,
    keyId: rolled.keyId,
    secretKey: rolled.secretKey,
    created: false,
  };
}
