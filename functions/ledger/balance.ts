import { BatchGetCommand, QueryCommand, type BatchGetCommandOutput } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../commons/clients';
import { required } from '../commons/config';
import { accountKey, MERCHANT_ACCOUNT_PREFIX, type AccountId, type AccountKind } from './accounts';

/** An account item as stored (accounts.ts for ids and keys, transfers.ts for the writes). */
export interface Account {
  account_id: AccountId;
  kind: AccountKind;
  owner: string;
  currency: string;
  shard?: number;
  flags?: string[];
  debits_pending: number;
  debits_posted: number;
  credits_pending: number;
  credits_posted: number;
  /** Flagged accounts only: what the flag protects, kept so a condition can check it. */
  headroom?: number;
  created_at: string;
  updated_at: string;
}

export interface BalanceAmount {
  currency: string;
  amount: number;
}

/** Stripe's balance object: `available` = captured, net of fees and refunds; `pending` = authorized, not captured. */
export interface Balance {
  object: 'balance';
  available: BalanceAmount[];
  pending: BalanceAmount[];
}

/** A merchant account's balances (TigerBeetle: available excludes pending debits too). */
export function merchantBalances(a: Pick<Account, 'debits_pending' | 'debits_posted' | 'credits_pending' | 'credits_posted'>) {
  return {
    available: a.credits_posted - a.debits_posted - a.debits_pending,
    pending: a.credits_pending,
  };
}

/**
 * The merchant's balance per currency: one strongly consistent Query of the merchant's partition
 * (`MERCHANT#<id>`, sort keys `ACCOUNT#<CUR>#merchant`), so a refund just made is already counted.
 * Currencies are sorted; a merchant without payments gets empty lists.
 */
export async function getBalances(merchantId: string, options: { table?: string } = {}): Promise<Balance> {
  const accounts = await merchantAccounts(merchantId, options.table ?? required('TABLE_NAME'));
  const rows = accounts
    .filter((a) => a.kind === 'merchant')
    .sort((a, b) => (a.currency < b.currency ? -1 : 1))
    .map((a) => ({ currency: a.currency, ...merchantBalances(a) }));
  return {
    object: 'balance',
    available: rows.map(({ currency, available }) => ({ currency, amount: available })),
    pending: rows.map(({ currency, pending }) => ({ currency, amount: pending })),
  };
}

export async function merchantAccounts(merchantId: string, table: string): Promise<Account[]> {
  const items: Account[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}`, ':prefix': MERCHANT_ACCOUNT_PREFIX },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...((page.Items ?? []) as Account[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** Reads accounts by id (strongly consistent); accounts never written are absent from the map. */
export async function getAccounts(ids: AccountId[], table: string): Promise<Map<AccountId, Account>> {
  const found = new Map<AccountId, Account>();
  const unique = [...new Set(ids)];
  for (let i = 0; i < unique.length; i += 100) {
    let keys: Record<string, unknown>[] | undefined = unique.slice(i, i + 100).map(accountKey);
    for (let attempt = 0; keys?.length; attempt++) {
      if (attempt > 10) throw new Error(`BatchGet kept returning ${keys.length} unprocessed account keys`);
      const out: BatchGetCommandOutput = await dynamo().send(new BatchGetCommand({ RequestItems: { [table]: { Keys: keys, ConsistentRead: true } } }));
      for (const item of (out.Responses?.[table] ?? []) as Account[]) found.set(item.account_id, item);
      keys = out.UnprocessedKeys?.[table]?.Keys;
    }
  }
  return found;
}
