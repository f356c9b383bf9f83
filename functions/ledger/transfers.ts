import type { TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { InternalError } from '../commons/errors';
import { currency } from '../commons/money';
import {
  ACCOUNT_FLAGS,
  accountKey,
  DEFAULT_PLATFORM,
  feesAccount,
  merchantAccount,
  parseAccount,
  payoutsAccount,
  receivableAccount,
  type AccountId,
  type AccountRef,
} from './accounts';

/**
 * Double-entry transfers, TigerBeetle style (functions/ledger/README.md). A transfer debits one
 * account and credits another for the same amount and currency; it is immutable and at most one
 * transfer exists per id. Ids derive from the business event (`tr_<order>_capture`), so a retried
 * event can never be applied twice: its Put is conditioned on the id being new.
 *
 * This module only builds the TransactWriteItems actions; the caller sends them together with its
 * own state-change item (commit.ts does that, with retries on transaction conflicts).
 */
export const TRANSFER_KINDS = ['authorization', 'capture', 'void', 'refund', 'fee', 'adjustment', 'payout', 'conversion', 'fx_spread'] as const;
export type TransferKind = (typeof TRANSFER_KINDS)[number];

/**
 * `posted`: moves money now. `pending`: reserves it (the pending counters) until a later
 * `post_pending` (which may post less: the rest is released) or `void_pending` (releases all).
 */
export const TRANSFER_PHASES = ['posted', 'pending', 'post_pending', 'void_pending'] as const;
export type TransferPhase = (typeof TRANSFER_PHASES)[number];

export interface Transfer {
  id: string;
  debit: AccountId;
  credit: AccountId;
  /** Integer minor units, > 0. For `void_pending`, the whole pending amount. */
  amount: number;
  currency: string;
  kind: TransferKind;
  phase: TransferPhase;
  /** post_pending / void_pending: the pending transfer resolved. */
  pending_id?: string;
  /** post_pending / void_pending: that pending transfer's amount (checked against it by a condition). */
  pending_amount?: number;
  order_id?: string;
  refund_id?: string;
  /** The channel's payment (attempt) id, on captures: the channel's statement names it. */
  payment_id?: string;
  settlement_id?: string;
  /** Conversions: the locked rate and both amounts (functions/ledger/README.md § FX). */
  fx?: ConversionDetails;
  merchant_id: string;
  created_at: string;
}

/** What a conversion transfer records of its exchange: the source side, the rate applied and its parts. */
export interface ConversionDetails {
  source_currency: string;
  /** Minor units of source_currency. */
  source_amount: number;
  /** Decimal strings, never floats: the rate from the table, and the rate applied (markup included). */
  base_rate: string;
  rate: string;
  markup_bps: number;
  /** The rate table entry's effective time. */
  rate_effective_at: string;
}

/**
 * Ledger entries: the posted transfers that move a merchant's balance (a capture, a fee, a refund, an FX
 * conversion or spread, an adjustment). Settlement takes them by the merchant's gsi1 range
 * `ENTRY#<CUR>#<stream>#<created_at>#<id>`: `delayed` entries (captures and what goes with them) become
 * available after the merchant's payout delay, `immediate` ones (refunds, adjustments) at once. Payouts and
 * pending transfers are not entries.
 */
export const ENTRY_STREAMS = ['delayed', 'immediate'] as const;
export type EntryStream = (typeof ENTRY_STREAMS)[number];

export function entryOf(t: Transfer, debit: AccountRef, credit: AccountRef): { stream: EntryStream; amount: number } | undefined {
  if (t.kind === 'payout' || (t.phase !== 'posted' && t.phase !== 'post_pending')) return undefined;
  const sign = credit.kind === 'merchant' ? 1 : debit.kind === 'merchant' ? -1 : 0;
  if (sign === 0) return undefined;
  return { stream: t.kind === 'refund' || t.kind === 'adjustment' ? 'immediate' : 'delayed', amount: sign * t.amount };
}

export const entrySortKey = (currencyCode: string, stream: EntryStream, createdAt: string, id = '') => `ENTRY#${currencyCode}#${stream}#${createdAt}${id ? `#${id}` : ''}`;

/** Which phases each kind may take. */
const PHASES_OF: Record<TransferKind, readonly TransferPhase[]> = {
  authorization: ['pending'],
  capture: ['post_pending', 'posted'],
  void: ['void_pending'],
  refund: ['posted'],
  fee: ['posted'],
  adjustment: ['posted'],
  payout: ['pending', 'post_pending', 'void_pending'],
  conversion: ['pending', 'post_pending', 'posted', 'void_pending'],
  fx_spread: ['posted'],
};

/** DynamoDB's limit on actions in one TransactWriteItems. */
export const MAX_TRANSACT_ITEMS = 100;

export type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const ID = /^tr_[A-Za-z0-9_-]{1,200}$/;

export const transferKey = (id: string) => ({ pk: `TRANSFER#${id}`, sk: 'TRANSFER' });

// ---------------------------------------------------------------------------------------------
// Validation

/** Throws an InternalError (a caller bug, never a merchant's) naming the field, the value and the fix. */
export function validateTransfer(t: Transfer): { debit: AccountRef; credit: AccountRef } {
  const fail = (message: string): never => {
    throw new InternalError('ledger_invalid_transfer', `Transfer '${t.id}': ${message}`);
  };
  if (typeof t.id !== 'string' || !ID.test(t.id)) fail(`id must look like tr_<event> (letters, digits, '_' or '-'), got '${t.id}'.`);
  if (!(TRANSFER_KINDS as readonly string[]).includes(t.kind)) fail(`kind '${t.kind}' is not one of ${TRANSFER_KINDS.join(', ')}.`);
  if (!PHASES_OF[t.kind].includes(t.phase)) fail(`a ${t.kind} transfer must be ${PHASES_OF[t.kind].join(' or ')}, got phase '${t.phase}'.`);
  if (!currency(t.currency)) fail(`currency '${t.currency}' is not a payable ISO 4217 code.`);
  if (!Number.isSafeInteger(t.amount) || t.amount <= 0) {
    fail(`amount must be a positive integer number of minor units, got ${t.amount}. Skip zero-amount transfers instead of writing them.`);
  }
  if (t.debit === t.credit) fail(`debit and credit are the same account '${t.debit}'; a transfer moves money between two accounts.`);
  const debit = parseAccount(t.debit);
  const credit = parseAccount(t.credit);
  for (const [side, ref] of [['debit', debit], ['credit', credit]] as const) {
    if (ref.currency !== t.currency) fail(`${side} account '${ref.id}' is in ${ref.currency}, the transfer in ${t.currency}; both accounts must be in the transfer's currency.`);
  }
  if (typeof t.merchant_id !== 'string' || t.merchant_id.length === 0) fail('merchant_id is required.');
  if (typeof t.created_at !== 'string' || Number.isNaN(Date.parse(t.created_at))) fail(`created_at must be an ISO 8601 timestamp, got '${t.created_at}'.`);
  const resolves = t.phase === 'post_pending' || t.phase === 'void_pending';
  if (resolves) {
    if (!t.pending_id || !ID.test(t.pending_id)) fail(`a ${t.phase} transfer needs the pending_id of the transfer it resolves.`);
    if (t.pending_id === t.id) fail('pending_id must name another transfer.');
    const pending = t.pending_amount;
    if (pending === undefined || !Number.isSafeInteger(pending) || pending <= 0) {
      fail(`a ${t.phase} transfer needs pending_amount, the pending transfer's amount, got ${pending}.`);
    } else if (t.phase === 'post_pending' && t.amount > pending) {
      fail(`posts ${t.amount}, more than the ${pending} pending; capture at most the authorized amount.`);
    } else if (t.phase === 'void_pending' && t.amount !== pending) {
      fail(`a void releases the whole pending amount ${pending}, got amount ${t.amount}.`);
    }
  } else if (t.pending_id !== undefined || t.pending_amount !== undefined) {
    fail(`pending_id and pending_amount belong only on post_pending / void_pending transfers, not on a ${t.phase} one.`);
  }
  return { debit, credit };
}

// ---------------------------------------------------------------------------------------------
// Business events → transfers. One place decides which account is debited and credited.

export interface PaymentRef {
  order_id: string;
  merchant_id: string;
  currency: string;
  /** The payment channel that holds the payer's money, e.g. `sandbox`. */
  channel: string;
  /** Owner of the fee revenue accounts. @default DEFAULT_PLATFORM */
  platform?: string;
  /** The channel's payment (attempt) id: set on the capture, which the channel's statement lists by it. */
  payment_id?: string;
}

const accountsOf = (ref: PaymentRef) => ({
  merchant: merchantAccount(ref.merchant_id, ref.currency),
  receivable: receivableAccount(ref.channel, ref.currency, ref.order_id),
  fees: feesAccount(ref.currency, ref.order_id, ref.platform ?? DEFAULT_PLATFORM),
});

const base = (ref: PaymentRef, now: Date) => ({
  currency: ref.currency,
  order_id: ref.order_id,
  merchant_id: ref.merchant_id,
  created_at: now.toISOString(),
});

export const transferIds = {
  authorization: (orderId: string) => `tr_${orderId}_authorization`,
  capture: (orderId: string) => `tr_${orderId}_capture`,
  void: (orderId: string) => `tr_${orderId}_void`,
  fee: (orderId: string) => `tr_${orderId}_fee`,
  refund: (refundId: string) => `tr_${refundId}_refund`,
};

/** Authorization: reserve `amount` owed by the channel to the merchant (pending). */
export function authorizationTransfer(ref: PaymentRef, amount: number, now: Date): Transfer {
  const a = accountsOf(ref);
  return {
    id: transferIds.authorization(ref.order_id),
    debit: a.receivable,
    credit: a.merchant,
    amount,
    kind: 'authorization',
    phase: 'pending',
    ...base(ref, now),
  };
}

/**
 * Capture `amount` and charge `fee` on it. With `authorized` (the amount of the order's
 * authorization transfer), posts that pending transfer: capturing less releases the rest in the
 * same transfer, as TigerBeetle does. Without it, a single-phase capture (automatic capture with
 * no separate authorization). A zero fee writes no fee transfer.
 */
export function captureTransfers(ref: PaymentRef, input: { amount: number; fee: number; authorized?: number }, now: Date): Transfer[] {
  const a = accountsOf(ref);
  const capture: Transfer = {
    id: transferIds.capture(ref.order_id),
    debit: a.receivable,
    credit: a.merchant,
    amount: input.amount,
    kind: 'capture',
    ...(ref.payment_id ? { payment_id: ref.payment_id } : {}),
    ...(input.authorized === undefined
      ? { phase: 'posted' as const }
      : { phase: 'post_pending' as const, pending_id: transferIds.authorization(ref.order_id), pending_amount: input.authorized }),
    ...base(ref, now),
  };
  if (!Number.isSafeInteger(input.fee) || input.fee < 0 || input.fee > input.amount) {
    throw new InternalError('ledger_invalid_transfer', `Fee ${input.fee} on a capture of ${input.amount} must be an integer from 0 to the amount captured.`);
  }
  if (input.fee === 0) return [capture];
  const fee: Transfer = { id: transferIds.fee(ref.order_id), debit: a.merchant, credit: a.fees, amount: input.fee, kind: 'fee', phase: 'posted', ...base(ref, now) };
  return [capture, fee];
}

/** Void: release the whole authorization (`authorized` = its amount). */
export function voidTransfer(ref: PaymentRef, authorized: number, now: Date): Transfer {
  const a = accountsOf(ref);
  return {
    id: transferIds.void(ref.order_id),
    debit: a.receivable,
    credit: a.merchant,
    amount: authorized,
    kind: 'void',
    phase: 'void_pending',
    pending_id: transferIds.authorization(ref.order_id),
    pending_amount: authorized,
    ...base(ref, now),
  };
}

/** Refund: the merchant's available balance pays the payer back through the channel. Fees are kept. */
export function refundTransfer(ref: PaymentRef, input: { refund_id: string; amount: number }, now: Date): Transfer {
  const a = accountsOf(ref);
  return {
    id: transferIds.refund(input.refund_id),
    debit: a.merchant,
    credit: a.receivable,
    amount: input.amount,
    kind: 'refund',
    phase: 'posted',
    refund_id: input.refund_id,
    ...base(ref, now),
  };
}

/**
 * Two-phase payouts (TigerBeetle's pending transfers): settling reserves the net (merchant → payouts,
 * pending: the merchant's `in_payout`), a paid payout posts it, a payout that failed for good voids it and the
 * money is available again. The reserve is checked against the merchant's headroom; it resolves once.
 */
export interface PayoutRef {
  settlement_id: string;
  merchant_id: string;
  currency: string;
  platform?: string;
}

const payoutAccounts = (ref: PayoutRef) => ({
  merchant: merchantAccount(ref.merchant_id, ref.currency),
  payouts: payoutsAccount(ref.currency, ref.settlement_id, ref.platform ?? DEFAULT_PLATFORM),
});

export const payoutTransferIds = {
  reserve: (settlementId: string) => `tr_${settlementId}_payout`,
  post: (settlementId: string) => `tr_${settlementId}_payout_post`,
  void: (settlementId: string) => `tr_${settlementId}_payout_void`,
};

export function payoutTransfer(ref: PayoutRef, step: 'reserve' | 'post' | 'void', amount: number, now: Date): Transfer {
  const a = payoutAccounts(ref);
  const resolves = step === 'reserve' ? {} : { pending_id: payoutTransferIds.reserve(ref.settlement_id), pending_amount: amount };
  return {
    id: payoutTransferIds[step](ref.settlement_id),
    debit: a.merchant,
    credit: a.payouts,
    amount,
    currency: ref.currency,
    kind: 'payout',
    phase: step === 'reserve' ? 'pending' : step === 'post' ? 'post_pending' : 'void_pending',
    ...resolves,
    settlement_id: ref.settlement_id,
    merchant_id: ref.merchant_id,
    created_at: now.toISOString(),
  };
}

// ---------------------------------------------------------------------------------------------
// Transfers → TransactWriteItems actions

interface Deltas {
  ref: AccountRef;
  debits_pending: number;
  debits_posted: number;
  credits_pending: number;
  credits_posted: number;
  /** What refunds lower the headroom by: counted in it, never checked against it (README § Refunds after payout). */
  exempt: number;
}

/**
 * The TransactWriteItems actions that apply `transfers` atomically:
 * - one Put per transfer, conditioned on its id being new (at most one transfer per id);
 * - one Update per pending transfer that is posted or voided, conditioned on it still being
 *   pending with the stated accounts and amount (a pending transfer resolves at most once);
 * - one Update per account touched, its counters ADDed, merged across the batch (DynamoDB allows
 *   one action per item in a transaction), conditioned on the balance flag where the batch lowers
 *   the account's headroom.
 * Add the caller's own state-change items to the same TransactItems. `reservedItems` counts them
 * against DynamoDB's limit of 100 actions.
 */
export function transferWrites(table: string, transfers: Transfer[], now: Date, options: { reservedItems?: number } = {}): TransactItem[] {
  const at = now.toISOString();
  const ids = new Set<string>();
  const resolved = new Map<string, string>();
  const accounts = new Map<AccountId, Deltas>();
  const touch = (ref: AccountRef) => {
    let d = accounts.get(ref.id);
    if (!d) accounts.set(ref.id, (d = { ref, debits_pending: 0, debits_posted: 0, credits_pending: 0, credits_posted: 0, exempt: 0 }));
    return d;
  };

  for (const t of transfers) {
    const { debit, credit } = validateTransfer(t);
    if (ids.has(t.id)) throw new InternalError('ledger_invalid_transfer', `Transfer '${t.id}' appears twice in one batch; each transfer id is applied once.`);
    ids.add(t.id);
    const d = touch(debit);
    const c = touch(credit);
    switch (t.phase) {
      case 'posted':
        d.debits_posted += t.amount;
        c.credits_posted += t.amount;
        // A refund of a paid-out order may take the merchant below zero; the next settlement nets it off.
        if (t.kind === 'refund') d.exempt += t.amount;
        break;
      case 'pending':
        d.debits_pending += t.amount;
        c.credits_pending += t.amount;
        break;
      case 'post_pending':
      case 'void_pending': {
        const pendingId = t.pending_id!;
        const other = resolved.get(pendingId);
        if (other) throw new InternalError('ledger_invalid_transfer', `Transfers '${other}' and '${t.id}' both resolve pending transfer '${pendingId}'; a pending transfer is posted or voided once.`);
        resolved.set(pendingId, t.id);
        d.debits_pending -= t.pending_amount!;
        c.credits_pending -= t.pending_amount!;
        if (t.phase === 'post_pending') {
          d.debits_posted += t.amount;
          c.credits_posted += t.amount;
        }
        break;
      }
    }
  }
  for (const pendingId of resolved.keys()) {
    if (ids.has(pendingId)) {
      throw new InternalError('ledger_invalid_transfer', `Pending transfer '${pendingId}' is created and resolved in one batch; write it first, or use a single-phase (posted) transfer.`);
    }
  }

  const count = transfers.length + resolved.size + accounts.size;
  const reserved = options.reservedItems ?? 0;
  if (count + reserved > MAX_TRANSACT_ITEMS) {
    throw new InternalError(
      'ledger_batch_too_large',
      `These ${transfers.length} transfers need ${count} TransactWriteItems actions (${transfers.length} transfers, ${resolved.size} pending resolutions, ${accounts.size} accounts)` +
        `${reserved ? ` plus ${reserved} of the caller's` : ''}, over DynamoDB's limit of ${MAX_TRANSACT_ITEMS}. Split them into several transactions.`,
    );
  }

  const items: TransactItem[] = transfers.map((t) => {
    const entry = entryOf(t, parseAccount(t.debit), parseAccount(t.credit));
    return {
      Put: {
        TableName: table,
        Item: {
          ...transferKey(t.id),
          type: 'transfer',
          gsi1pk: `MERCHANT#${t.merchant_id}`,
          gsi1sk: entry ? entrySortKey(t.currency, entry.stream, t.created_at, t.id) : `TRANSFER#${t.created_at}#${t.id}`,
          ...t,
          ...(entry ? { entry_stream: entry.stream, entry_amount: entry.amount } : {}),
          ...(t.phase === 'pending' ? { pending_status: 'pending' } : {}),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
  });

  for (const t of transfers.filter((x) => x.phase === 'post_pending' || x.phase === 'void_pending')) {
    items.push({
      Update: {
        TableName: table,
        Key: transferKey(t.pending_id!),
        // Only the pending state changes; the transfer's own fields never do.
        UpdateExpression: 'SET #status = :to, #by = :by, #at = :at',
        ConditionExpression: '#status = :pending AND #amount = :amount AND #debit = :debit AND #credit = :credit AND #currency = :currency',
        ExpressionAttributeNames: {
          '#status': 'pending_status',
          '#by': 'resolved_by',
          '#at': 'resolved_at',
          '#amount': 'amount',
          '#debit': 'debit',
          '#credit': 'credit',
          '#currency': 'currency',
        },
        ExpressionAttributeValues: {
          ':to': t.phase === 'post_pending' ? 'posted' : 'voided',
          ':by': t.id,
          ':at': at,
          ':pending': 'pending',
          ':amount': t.pending_amount,
          ':debit': t.debit,
          ':credit': t.credit,
          ':currency': t.currency,
        },
      },
    });
  }

  for (const d of [...accounts.values()].sort((a, b) => (a.ref.id < b.ref.id ? -1 : 1))) items.push(accountUpdate(table, d, at));
  return items;
}

/** gsi2 partition of every merchant account, sort key `<merchant>#<CUR>`: what a settlement run goes through. */
export const SETTLE_ACCOUNTS = 'SETTLE_ACCOUNTS';

/** What the balance flag protects: credits_posted − debits (posted and pending), or the mirror. */
export function headroomDelta(flag: (typeof ACCOUNT_FLAGS)[keyof typeof ACCOUNT_FLAGS], d: Omit<Deltas, 'ref' | 'exempt'>): number {
  if (flag === 'debits_must_not_exceed_credits') return d.credits_posted - d.debits_posted - d.debits_pending;
  if (flag === 'credits_must_not_exceed_debits') return d.debits_posted - d.credits_posted - d.credits_pending;
  return 0;
}

function accountUpdate(table: string, d: Deltas, at: string): TransactItem {
  const flag = ACCOUNT_FLAGS[d.ref.kind];
  const headroom = headroomDelta(flag, d);
  const names: Record<string, string> = {
    '#type': 'type',
    '#account_id': 'account_id',
    '#kind': 'kind',
    '#owner': 'owner',
    '#currency': 'currency',
    '#created_at': 'created_at',
    '#updated_at': 'updated_at',
    '#dp': 'debits_pending',
    '#dP': 'debits_posted',
    '#cp': 'credits_pending',
    '#cP': 'credits_posted',
  };
  const values: Record<string, unknown> = {
    ':type': 'account',
    ':id': d.ref.id,
    ':kind': d.ref.kind,
    ':owner': d.ref.owner,
    ':currency': d.ref.currency,
    ':at': at,
    ':dp': d.debits_pending,
    ':dP': d.debits_posted,
    ':cp': d.credits_pending,
    ':cP': d.credits_posted,
  };
  const set = ['#type = :type', '#account_id = :id', '#kind = :kind', '#owner = :owner', '#currency = :currency', '#created_at = if_not_exists(#created_at, :at)', '#updated_at = :at'];
  const add = ['#dp :dp', '#dP :dP', '#cp :cp', '#cP :cP'];
  let condition: string | undefined;
  if (flag) {
    names['#flags'] = 'flags';
    names['#headroom'] = 'headroom';
    values[':flags'] = [flag];
    values[':headroom'] = headroom;
    set.push('#flags = :flags');
    add.push('#headroom :headroom');
    if (headroom + d.exempt < 0) {
      // Condition expressions cannot do arithmetic, so the account keeps its headroom as an
      // attribute; a missing account has none.
      values[':need'] = -(headroom + d.exempt);
      condition = '#headroom >= :need';
    }
  }
  if (d.ref.kind === 'merchant') {
    // The settle run pages merchant accounts by this index (settlements/tasks.ts prepare). Set once: gsi2 projects
    // none of the counters, so the later updates of a busy account write no index entry.
    names['#gsi2pk'] = 'gsi2pk';
    names['#gsi2sk'] = 'gsi2sk';
    values[':settle'] = SETTLE_ACCOUNTS;
    values[':settleSk'] = `${d.ref.owner}#${d.ref.currency}`;
    set.push('#gsi2pk = if_not_exists(#gsi2pk, :settle)', '#gsi2sk = if_not_exists(#gsi2sk, :settleSk)');
  }
  if (d.ref.shard !== undefined) {
    names['#shard'] = 'shard';
    values[':shard'] = d.ref.shard;
    set.push('#shard = :shard');
  }
  return {
    Update: {
      TableName: table,
      Key: accountKey(d.ref.id),
      UpdateExpression: `SET ${set.join(', ')} ADD ${add.join(', ')}`,
      ...(condition ? { ConditionExpression: condition } : {}),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    },
  };
}
