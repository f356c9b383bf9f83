import { setTimeout as sleep } from 'node:timers/promises';
import { AuthenticationError, ConflictError, InternalError, NotFoundError } from '../commons/errors';
import { newId } from '../commons/ids';
import { Secret } from '../commons/secret';
import { parseFeeSchedule, type FeeScheduleOverride } from '../ledger/fees';
import { generateSecretKey, hashSecretKey, isSecretKey, keyHint, newKeyId } from './keys';
import {
  apiKeyItem,
  apiKeyKey,
  commit,
  getApiKey,
  getMerchant,
  hashOfApiKeyItem,
  listActiveKeys,
  merchantItem,
  merchantKey,
  updateMerchantFees,
  type MerchantDeps,
  type MerchantItem,
  type TransactItems,
} from './repository';
import { validateMerchantId, validateMerchantName } from './validation';

/**
 * Merchant and API-key operations, used by the operator CLI, the local cloud's demo seeding and
 * the authorizer. Each follows the same skeleton: validate → load → decide → persist.
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

export interface AuthenticatedKey {
  merchantId: string;
  keyId: string;
  livemode: false;
}

export const DEMO_MERCHANT_ID = 'mch_demo';
export const DEMO_MERCHANT_NAME = 'Demo merchant';

/** Attempts for a roll whose transaction met a transient conflict or a lagging gsi1. */
const ROLL_ATTEMPTS = 8;

const timestamp = (deps: MerchantDeps) => (deps.now?.() ?? new Date()).toISOString();

/**
 * Creates a merchant and its first secret key in one transaction, with an optional fee override
 * (`fees`, see ledger/fees.ts). `options.id` is for fixed ids (the demo).
 */
export async function createMerchant(
  deps: MerchantDeps,
  input: { name: unknown; fees?: unknown },
  options: { id?: string } = {},
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
  // persist
  const result = await commit(deps, [
    {
      Put: {
        TableName: deps.tableName,
        Item: merchantItem({ id, name, createdAt, keyId, keyHash, feeSchedule }),
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
  ]);
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
export async function setMerchantFees(deps: MerchantDeps, input: { merchantId: unknown; fees: unknown }): Promise<Merchant> {
  // validate
  const merchantId = validateMerchantId(input.merchantId);
  const feeSchedule = feeOverride(input.fees);
  // persist (conditioned on the merchant existing: an unknown id is refused, never created)
  const merchant = await updateMerchantFees(deps, merchantId, feeSchedule);
  if (!merchant) throw new NotFoundError('merchant', merchantId, 'merchant_id');
  return { id: merchant.id, name: merchant.name, created_at: merchant.created_at, ...(merchant.fee_schedule ? { fee_schedule: merchant.fee_schedule } : {}) };
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
export async function rollKey(deps: MerchantDeps, input: { merchantId: unknown }): Promise<RolledKey> {
  // validate
  const merchantId = validateMerchantId(input.merchantId);
  let readVersion: number | undefined;
  for (let attempt = 1; ; attempt++) {
    // load
    const merchant = await getMerchant(deps, merchantId);
    if (!merchant) throw new NotFoundError('merchant', merchantId, 'merchant_id');
    // A merchant item written without the counter (a fixture) counts as version 0.
    const version = merchant.key_version ?? 0;
    readVersion ??= version;
    if (version !== readVersion) throw lostRoll(merchant);
    const listed = await listActiveKeys(deps, merchantId);
    // decide
    const revoke = new Map<string, string>(); // key hash → key id
    if (merchant.active_key_hash && merchant.active_key_id) revoke.set(merchant.active_key_hash, merchant.active_key_id);
    for (const key of listed) revoke.set(hashOfApiKeyItem(key), key.key_id);
    if (revoke.size > 98) {
      // 100 actions per transaction; the invariant keeps one active key, so this is a data bug.
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
    const result = await commit(deps, items);
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
    throw new AuthenticationError('api_key_malformed', "The API key provided is not a Payplane secret key ('sk_test_' + 32 letters and digits).");
  }
  const item = await getApiKey(deps, hashSecretKey(key));
  if (!item) {
    throw new AuthenticationError('api_key_unknown', `Invalid API key provided: sk_test_${keyHint(key)}. Check that you copied the whole key.`);
  }
  if (item.status !== 'active') {
    throw new AuthenticationError(
      'api_key_revoked',
      `The API key sk_test_${keyHint(key)} has been rolled and no longer works. Use the merchant's current key.`,
      { extra: { key_id: item.key_id } },
    );
  }
  return { merchantId: item.merchant_id, keyId: item.key_id, livemode: false };
}

/**
 * The local cloud's demo merchant: created once with the fixed id `mch_demo`; since keys are
 * stored hashed, every call rolls and returns a fresh test key.
 */
export async function ensureDemoMerchant(deps: MerchantDeps): Promise<CreatedMerchant & { created: boolean }> {
  const existing = await getMerchant(deps, DEMO_MERCHANT_ID);
  if (!existing) {
    try {
      return { ...(await createMerchant(deps, { name: DEMO_MERCHANT_NAME }, { id: DEMO_MERCHANT_ID })), created: true };
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error; // created by a concurrent start: roll below
    }
  }
  const rolled = await rollKey(deps, { merchantId: DEMO_MERCHANT_ID });
  const merchant = existing ?? (await getMerchant(deps, DEMO_MERCHANT_ID))!;
  return {
    merchant: { id: merchant.id, name: merchant.name, created_at: merchant.created_at },
    merchantId: rolled.merchantId,
    keyId: rolled.keyId,
    secretKey: rolled.secretKey,
    created: false,
  };
}
