import { QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { auditPk, contentOf, entryKey, type StoredEntry } from './chain';
import type { AuditAction } from './context';

/** Reads a chain's entries (docs/audit.md § Reading). */
export interface ReadDeps {
  db: Pick<DynamoDBDocumentClient, 'send'>;
  tableName: string;
}

/**
 * A page of the chain's entries, newest first, after the entry `startingAfter` (its seq) and of one action only
 * when given. One Query of the chain's partition; a filtered page reads on until it is full or the chain ends.
 */
export async function listEntries(
  deps: ReadDeps,
  chain: string,
  options: { limit: number; startingAfter?: number; action?: AuditAction },
): Promise<{ entries: StoredEntry[]; hasMore: boolean }> {
  const entries: StoredEntry[] = [];
  let start: Record<string, unknown> | undefined = options.startingAfter === undefined ? undefined : entryKey(chain, options.startingAfter);
  do {
    const page = await deps.db.send(
      new QueryCommand({
        TableName: deps.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :seq)',
        ...(options.action
          ? { FilterExpression: '#action = :action', ExpressionAttributeNames: { '#action': 'action' } }
          : {}),
        ExpressionAttributeValues: { ':pk': auditPk(chain), ':seq': 'SEQ#', ...(options.action ? { ':action': options.action } : {}) },
        ScanIndexForward: false,
        ExclusiveStartKey: start,
        // One more than asked: whether there is a next page.
        Limit: options.limit + 1,
      }),
    );
    // With its hash: whoever reads the chain can check it link by link.
    entries.push(...(page.Items ?? []).map((item) => ({ ...contentOf(item), hash: item.hash }) as unknown as StoredEntry));
    start = page.LastEvaluatedKey;
  } while (start && entries.length <= options.limit);
  return { entries: entries.slice(0, options.limit), hasMore: entries.length > options.limit };
}

/** Every entry of a chain after seq `after` (default: all), oldest first (verify.ts), as stored. */
export async function* walkChain(deps: ReadDeps, chain: string, after = 0): AsyncGenerator<Record<string, unknown>> {
  let start: Record<string, unknown> | undefined = after ? entryKey(chain, after) : undefined;
  do {
    const page = await deps.db.send(
      new QueryCommand({
        TableName: deps.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :seq)',
        ExpressionAttributeValues: { ':pk': auditPk(chain), ':seq': 'SEQ#' },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    yield* (page.Items ?? []) as Record<string, unknown>[];
    start = page.LastEvaluatedKey;
  } while (start);
}
