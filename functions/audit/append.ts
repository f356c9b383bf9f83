import type { TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import type { AuditAction, AuditContext } from './context';

export type TransactItems = NonNullable<TransactWriteCommandInput['TransactItems']>;
export type CommitResult = { committed: true } | { committed: false; reasons: string[] };

/** One audit entry's content; the chain (seq, prev_hash, hash) is added by commitAudited. */
export interface AuditChange {
  action: AuditAction;
  /** The merchant whose chain it joins; undefined: the platform chain. */
  merchantId?: string;
  /** What was changed, e.g. { type: 'merchant', id: 'mch_…' }. */
  target: { type: string; id: string };
  /** State before and after, secrets and PII masked by the caller's `mask` (functions/audit). */
  before?: unknown;
  after?: unknown;
}

/**
 * Commits `items` and appends the audit entry in the same transaction, conditioned on the chain head.
 *
 * CONTRACT PLACEHOLDER (session 6): commits the items only. The audit strand replaces the body; callers keep
 * this signature. `reasons` has one code per item of `items` (the audit's own items are not reported).
 */
export async function commitAudited(
  deps: { db: Pick<DynamoDBDocumentClient, 'send'>; tableName: string; now?: () => Date },
  items: TransactItems,
  change: AuditChange,
  by: AuditContext,
): Promise<CommitResult> {
  void change;
  void by;
  try {
    await deps.db.send(new TransactWriteCommand({ TransactItems: items, ClientRequestToken: randomUUID() }));
    return { committed: true };
  } catch (error) {
    if (error instanceof Error && error.name === 'TransactionCanceledException') {
      const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
      return { committed: false, reasons: items.map((_, i) => reasons[i]?.Code ?? 'Unknown') };
    }
    throw error;
  }
}
