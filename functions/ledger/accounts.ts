import { currency } from '../commons/money';
import { InternalError } from '../commons/errors';

/**
 * Ledger accounts (functions/ledger/README.md). Each account holds TigerBeetle's four counters,
 * `debits_pending`, `debits_posted`, `credits_pending` and `credits_posted`, in one currency:
 *
 *   merchant    merchant:<mch_id>:<CUR>             what the platform owes the merchant. Credits pending =
 *                                                   authorized, not captured; debits pending = payouts in flight;
 *                                                   credits posted − debits = available + pending (balance.ts).
 *                                                   Flag: debits must not exceed credits, except by refunds.
 *   receivable  receivable:<channel>:<CUR>:<shard>  what the payment channel owes the platform.
 *   fees        fees:<platform>:<CUR>:<shard>       the platform's fee revenue.
 *   payouts     payouts:<platform>:<CUR>:<shard>    money on its way to merchants' banks (two-phase payouts).
 *   fx          fx:<platform>:<CUR>:<shard>         the platform's currency-exchange liquidity, one per currency
 *                                                   (TigerBeetle's currency-exchange recipe).
 *   fx_spread   fx_spread:<platform>:<CUR>:<shard>  the platform's FX markup revenue.
 *
 * Platform-side accounts are split into SHARDS items chosen from the order id, so that concurrent
 * payments of one currency do not all write (and conflict on) one DynamoDB item; their balance is
 * the sum of the shards. All transfers of one order land on the same shard, as a post or void
 * must name the accounts of its pending transfer.
 */
export const ACCOUNT_KINDS = ['merchant', 'receivable', 'fees', 'payouts', 'fx', 'fx_spread'] as const;
export type AccountKind = (typeof ACCOUNT_KINDS)[number];

/** TigerBeetle's balance flags; enforced by a ConditionExpression on the account's `headroom`. */
export type AccountFlag = 'debits_must_not_exceed_credits' | 'credits_must_not_exceed_debits';

export const ACCOUNT_FLAGS: Record<AccountKind, AccountFlag | undefined> = {
  merchant: 'debits_must_not_exceed_credits',
  receivable: undefined,
  fees: undefined,
  payouts: undefined,
  fx: undefined,
  fx_spread: undefined,
};

/** Platform-side kinds: split into SHARDS items each. */
export const SHARDED_KINDS: readonly AccountKind[] = ['receivable', 'fees', 'payouts', 'fx', 'fx_spread'];

export const SHARDS = 8;

/** The platform that owns fee revenue, unless told otherwise (tests use their own to stay isolated). */
export const DEFAULT_PLATFORM = 'payplane';

export type AccountId = string;

export interface AccountRef {
  id: AccountId;
  kind: AccountKind;
  /** Merchant id, channel name or platform name. */
  owner: string;
  currency: string;
  shard?: number;
}

const OWNER = /^[A-Za-z0-9_-]{1,64}$/;

export function merchantAccount(merchantId: string, currencyCode: string): AccountId {
  return build('merchant', merchantId, currencyCode);
}

/** `shardKey` is the order id (or, for a transfer without an order, the transfer id). */
export function receivableAccount(channel: string, currencyCode: string, shardKey: string): AccountId {
  return build('receivable', channel, currencyCode, shardOf(shardKey));
}

export function feesAccount(currencyCode: string, shardKey: string, platform = DEFAULT_PLATFORM): AccountId {
  return build('fees', platform, currencyCode, shardOf(shardKey));
}

/** `shardKey` is the settlement id. */
export function payoutsAccount(currencyCode: string, shardKey: string, platform = DEFAULT_PLATFORM): AccountId {
  return build('payouts', platform, currencyCode, shardOf(shardKey));
}

/** `shardKey` is the order id: every transfer of an order uses the same shard. */
export function fxAccount(currencyCode: string, shardKey: string, platform = DEFAULT_PLATFORM): AccountId {
  return build('fx', platform, currencyCode, shardOf(shardKey));
}

export function fxSpreadAccount(currencyCode: string, shardKey: string, platform = DEFAULT_PLATFORM): AccountId {
  return build('fx_spread', platform, currencyCode, shardOf(shardKey));
}

/** Every shard of a platform-side account, e.g. to sum the fee revenue of one currency. */
export function allShards(kind: Exclude<AccountKind, 'merchant'>, owner: string, currencyCode: string): AccountId[] {
  return Array.from({ length: SHARDS }, (_, shard) => build(kind, owner, currencyCode, shard));
}

/** FNV-1a (32 bit) of the key, modulo SHARDS: stable across processes and releases. */
export function shardOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % SHARDS;
}

/** Parses an account id; throws on anything this module would not have produced. */
export function parseAccount(id: string): AccountRef {
  const parts = id.split(':');
  const [kind, owner, code, shardText] = parts;
  const sharded = SHARDED_KINDS.includes(kind as AccountKind);
  const ok =
    (ACCOUNT_KINDS as readonly string[]).includes(kind ?? '') &&
    parts.length === (sharded ? 4 : 3) &&
    OWNER.test(owner ?? '') &&
    currency(code ?? '') !== undefined &&
    (!sharded || (/^\d+$/.test(shardText ?? '') && Number(shardText) < SHARDS));
  if (!ok) {
    throw new InternalError(
      'ledger_invalid_account',
      `Ledger account id '${id}' is malformed. Build account ids with merchantAccount(), receivableAccount() or feesAccount().`,
    );
  }
  return { id, kind: kind as AccountKind, owner: owner!, currency: code!, shard: sharded ? Number(shardText) : undefined };
}

/**
 * Where an account lives in the main table. A merchant's accounts share the merchant's partition
 * (`MERCHANT#<id>` / `ACCOUNT#<CUR>#merchant`), so its balance is one strongly consistent Query;
 * platform-side accounts have their own partition each.
 */
export function accountKey(id: AccountId): { pk: string; sk: string } {
  const ref = parseAccount(id);
  return ref.kind === 'merchant'
    ? { pk: `MERCHANT#${ref.owner}`, sk: `ACCOUNT#${ref.currency}#${ref.kind}` }
    : { pk: `ACCOUNT#${id}`, sk: 'ACCOUNT' };
}

export const MERCHANT_ACCOUNT_PREFIX = 'ACCOUNT#';

function build(kind: AccountKind, owner: string, currencyCode: string, shard?: number): AccountId {
  if (!OWNER.test(owner)) {
    throw new InternalError(
      'ledger_invalid_account',
      `Ledger account owner '${owner}' for a ${kind} account must be 1-64 letters, digits, '_' or '-'.`,
    );
  }
  if (!currency(currencyCode)) {
    throw new InternalError('ledger_invalid_account', `Ledger account currency '${currencyCode}' is not a payable ISO 4217 code.`);
  }
  return shard === undefined ? `${kind}:${owner}:${currencyCode}` : `${kind}:${owner}:${currencyCode}:${shard}`;
}
