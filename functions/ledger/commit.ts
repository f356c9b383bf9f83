import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../commons/clients';
import { ConflictError, InternalError } from '../commons/errors';
import { toMajorString } from '../commons/money';
import { parseAccount, type AccountId } from './accounts';
import { transferWrites, type TransactItem, type Transfer } from './transfers';

/**
 * Sends transfers and the caller's state-change items in one TransactWriteItems: all or nothing.
 * A cancelled transaction is an answer, not an exception (as in merchants/repository.ts):
 * `reasons` holds one code per action, the caller's items first, so their indices are the
 * caller's own. Transaction conflicts (another transaction on one of the items, typically a busy
 * merchant account) are retried with jittered backoff; every other outcome is returned.
 */
export type LedgerRefusal =
  | { code: 'transfer_exists'; transfer_id: string }
  | { code: 'pending_transfer_not_pending'; pending_id: string }
  | { code: 'balance_insufficient'; account: AccountId };

export type LedgerCommit =
  | { committed: true; attempts: number }
  | {
      committed: false;
      attempts: number;
      /** One code per action: 'None', 'ConditionalCheckFailed', 'TransactionConflict', … */
      reasons: string[];
      /** Whether one of the caller's own items failed its condition. */
      callerRefused: boolean;
      /** The first ledger action that failed its condition, if any. */
      ledger?: LedgerRefusal;
    };

export interface CommitInput {
  table: string;
  transfers: Transfer[];
  now: Date;
  /** The caller's state-change items (e.g. the order's conditional Update), placed first. */
  items?: TransactItem[];
  /** @default 8 */
  maxAttempts?: number;
}

const RETRYABLE = new Set(['TransactionConflict', 'ThrottlingError', 'ProvisionedThroughputExceeded', 'RequestLimitExceeded']);

export async function commitTransfers(input: CommitInput): Promise<LedgerCommit> {
  const own = input.items ?? [];
  const all = [...own, ...transferWrites(input.table, input.transfers, input.now, { reservedItems: own.length })];
  const maxAttempts = input.maxAttempts ?? 8;
  for (let attempt = 1; ; attempt++) {
    try {
      // A fresh token per attempt: it makes the SDK's own retries of this attempt idempotent.
      await dynamo().send(new TransactWriteCommand({ TransactItems: all, ClientRequestToken: randomUUID() }));
      return { committed: true, attempts: attempt };
    } catch (error) {
      if (!(error instanceof Error) || error.name !== 'TransactionCanceledException') throw error;
      const codes = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
      const reasons = all.map((_, i) => codes[i]?.Code ?? 'Unknown');
      const failed = reasons.some((r) => r === 'ConditionalCheckFailed');
      if (!failed && reasons.some((r) => RETRYABLE.has(r)) && attempt < maxAttempts) {
        await sleep(backoff(attempt));
        continue;
      }
      return {
        committed: false,
        attempts: attempt,
        reasons,
        callerRefused: reasons.slice(0, own.length).includes('ConditionalCheckFailed'),
        ledger: ledgerRefusal(all, reasons),
      };
    }
  }
}

/** Full jitter, 10 ms doubling, capped at 320 ms. */
function backoff(attempt: number): number {
  return Math.random() * Math.min(320, 10 * 2 ** attempt);
}

/**
 * Which ledger action refused a cancelled transaction, from its CancellationReasons, for callers
 * that send the TransactWriteItems themselves. `items` is the whole transaction, in order.
 */
export function ledgerRefusal(items: TransactItem[], reasons: readonly string[]): LedgerRefusal | undefined {
  for (const [i, item] of items.entries()) {
    if (reasons[i] !== 'ConditionalCheckFailed') continue;
    if (item.Put?.Item?.type === 'transfer') return { code: 'transfer_exists', transfer_id: item.Put.Item.id as string };
    const pk = item.Update?.Key?.pk as string | undefined;
    if (pk?.startsWith('TRANSFER#')) return { code: 'pending_transfer_not_pending', pending_id: pk.slice('TRANSFER#'.length) };
    const account = item.Update?.ExpressionAttributeValues?.[':id'];
    if (item.Update?.ExpressionAttributeValues?.[':type'] === 'account' && typeof account === 'string') {
      return { code: 'balance_insufficient', account };
    }
  }
  return undefined;
}

/**
 * The error to answer a merchant with, for a refusal the payments code did not prevent with its
 * own state checks. `amount` is the transfer's amount, for the message.
 */
export function refusalError(refusal: LedgerRefusal, amount?: number): ConflictError | InternalError {
  switch (refusal.code) {
    case 'balance_insufficient': {
      const { owner, currency } = parseAccount(refusal.account);
      const what = amount === undefined ? 'this amount' : `${toMajorString(amount, currency)} ${currency}`;
      return new ConflictError(
        'balance_insufficient',
        // Refunds never get here (they may take a merchant below zero): a payout reserve, or an adjustment, does.
        `The ${currency} balance of merchant '${owner}' does not cover ${what}: its ledger account would go below zero. Reserve at most what the account holds (credits posted − debits posted − payouts in flight).`,
        { extra: { currency } },
      );
    }
    case 'transfer_exists':
      return new ConflictError('transfer_exists', `Ledger transfer '${refusal.transfer_id}' was already applied; the operation it records has happened. Retrieve the resource to see its state.`);
    case 'pending_transfer_not_pending':
      // The order's own state condition should have caught this first: it is a bug if it did not.
      return new InternalError('pending_transfer_not_pending', `Pending transfer '${refusal.pending_id}' is missing, already posted or voided, or has other accounts or amount.`);
  }
}
