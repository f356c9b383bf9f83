import type { TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContendedError } from '../commons/errors';
import { randomBase62 } from '../commons/ids';
import { auditEventId, chainOf, entryItem, headItem, headKey, ZERO_HASH, type AuditEntry, type ChainHead } from './chain';
import type { AuditAction, AuditContext } from './context';

export type TransactItems = NonNullable<TransactWriteCommandInput['TransactItems']>;
export type CommitResult = { committed: true; entry?: AuditEntry } | { committed: false; reasons: string[] };

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

export interface AuditDeps {
  db: Pick<DynamoDBDocumentClient, 'send'>;
  tableName: string;
  now?: () => Date;
}

/**
 * Appends to a chain head that moved under us are retried this many times. Each lost race means another change
 * of the same chain committed, so n concurrent changes of one merchant need at most n attempts.
 */
export const APPEND_ATTEMPTS = 16;

/**
 * Commits `items` and appends the audit entry in the same transaction (TransactWriteItems, at most 98 items of the
 * caller's: the entry and the head take two), so a change is never written without its entry nor an entry without
 * its change. The head's Put is conditioned on the seq read (strongly consistent), so two changes of one chain
 * never both take the same seq: the chain never forks.
 *
 * When only the audit items cancelled the transaction (the head moved: another change of the chain committed
 * first), the head is read again and the transaction retried after a jittered backoff, at most APPEND_ATTEMPTS
 * times. When one of the caller's items did, `reasons` has one code per item of `items` (the audit's own are not
 * reported) and the caller decides, as with a transaction of its own.
 */
export async function commitAudited(deps: AuditDeps, items: TransactItems, change: AuditChange, by: AuditContext): Promise<CommitResult> {
  const chain = chainOf(change.merchantId);
  for (let attempt = 1; ; attempt++) {
    const { Item } = await deps.db.send(new GetCommand({ TableName: deps.tableName, Key: headKey(chain), ConsistentRead: true }));
    const head = Item as ChainHead | undefined;
    const now = (deps.now?.() ?? new Date()).toISOString();
    const seq = (head?.seq ?? 0) + 1;
    const entry: AuditEntry = {
      object: 'audit_event',
      id: auditEventId(seq, randomBase62(12)),
      chain,
      seq,
      prev_hash: head?.hash ?? ZERO_HASH,
      action: change.action,
      actor: by.actor,
      ...(change.merchantId !== undefined ? { merchant_id: change.merchantId } : {}),
      target: change.target,
      request_id: by.requestId,
      created_at: now,
      ...(change.before !== undefined ? { before: change.before } : {}),
      ...(change.after !== undefined ? { after: change.after } : {}),
    };
    const stored = entryItem(entry);
    const audit: TransactItems = [
      { Put: { TableName: deps.tableName, Item: stored, ConditionExpression: 'attribute_not_exists(pk)' } },
      {
        Put: {
          TableName: deps.tableName,
          Item: headItem({ chain, seq: entry.seq, hash: stored.hash, updated_at: now }),
          ConditionExpression: head ? 'seq = :read' : 'attribute_not_exists(pk)',
          ...(head ? { ExpressionAttributeValues: { ':read': head.seq } } : {}),
        },
      },
    ];
    try {
      // The token makes the SDK's own retries of this exact transaction idempotent (10 minutes).
      await deps.db.send(new TransactWriteCommand({ TransactItems: [...items, ...audit], ClientRequestToken: randomUUID() }));
      return { committed: true, entry };
    } catch (error) {
      if (!(error instanceof Error && error.name === 'TransactionCanceledException')) throw error;
      const codes = ((error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? []).map((r) => r.Code ?? 'Unknown');
      const mine = items.map((_, i) => codes[i] ?? 'Unknown');
      const theirs = codes.slice(items.length);
      // The chain's items refused (the head moved, or another append held it) and none of the caller's conditions
      // failed: the same transaction again is safe, its conditions are evaluated anew. Anything else is the caller's.
      const headMoved = mine.every((c) => c === 'None' || c === 'TransactionConflict') && theirs.some((c) => c !== 'None');
      if (!headMoved) return { committed: false, reasons: mine };
      if (attempt >= APPEND_ATTEMPTS) {
        throw new ContendedError(
          'audit_chain_contended',
          `The audit chain '${chain}' moved ${attempt} times while ${change.action} was being recorded; nothing was changed. Retry the request.`,
          { cause: error },
        );
      }
      // Full jitter: concurrent writers of one chain spread out instead of colliding again.
      await sleep(Math.random() * Math.min(10 * 2 ** attempt, 250));
    }
  }
}
