import { BatchGetCommand, QueryCommand, type BatchGetCommandOutput, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../commons/clients';
import { required } from '../commons/config';
import { getMerchantPayoutSettings } from '../merchants/repository';
import type { SettlementCursor } from '../settlements/settlement';
import { availableBefore, businessTimeZone } from '../settlements/calendar';
import { accountKey, MERCHANT_ACCOUNT_PREFIX, type AccountId, type AccountKind } from './accounts';
import { entrySortKey, SETTLE_ACCOUNTS } from './transfers';

/** An account item as stored (accounts.ts for ids and keys, transfers.ts for the writes). */
export interface Account {
  type?: 'account';
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

/**
 * The merchant's balance per currency, with Stripe's meanings (functions/ledger/README.md § Balance):
 * - `available`: settled into nothing yet and past its payout delay: what the next settlement pays. Negative
 *   only after refunds (a refund of an order already paid out, or of one not yet available).
 * - `pending`: captured (net of fees and FX spread), not yet available (the merchant's `delay_days`).
 * - `in_payout`: reserved by a settlement whose payout has not been posted or voided yet.
 * - `authorized`: authorized, not captured.
 * Each list has one row per currency the merchant has an account in, sorted by currency.
 */
export interface Balance {
  object: 'balance';
  available: BalanceAmount[];
  pending: BalanceAmount[];
  in_payout: BalanceAmount[];
  authorized: BalanceAmount[];
}

type Counters = Pick<Account, 'debits_pending' | 'debits_posted' | 'credits_pending' | 'credits_posted'>;

/**
 * A merchant account's balances, given `pending` (the delayed entries not yet available, from the entry index).
 * The merchant's only pending debits are payout reserves, and its only pending credits authorizations.
 */
export function merchantBalances(a: Counters, pending = 0) {
  return {
    available: a.credits_posted - a.debits_posted - a.debits_pending - pending,
    pending,
    in_payout: a.debits_pending,
    authorized: a.credits_pending,
  };
}

export interface BalanceOptions {
  table?: string;
  /** @default new Date() */
  now?: Date;
  /** The merchant's payout delay. @default its payout settings' (functions/merchants/repository.ts) */
  delayDays?: number;
  /** @default businessTimeZone() */
  zone?: string;
}

/**
 * The merchant's balance per currency.
 *
 * One strongly consistent Query of the merchant's partition (`MERCHANT#<id>`, sort keys `ACCOUNT#<CUR>#…`) reads
 * its ledger accounts and its settlement cursors, so a refund or payout just made is already counted. `pending`
 * is then, per currency, the sum of the delayed entries created at or after the later of the cursor's
 * `delayed_through` (entries before it belong to settlements) and availableBefore(now) (entries before it are
 * available): a Query of the merchant's gsi1 entry range from that bound on. gsi1 is eventually consistent, so a
 * capture of the last moment may count as available until the index has it (usually well under a second).
 */
export async function getBalances(merchantId: string, options: BalanceOptions = {}): Promise<Balance> {
  const table = options.table ?? required('TABLE_NAME');
  const now = options.now ?? new Date();
  const zone = options.zone ?? businessTimeZone();
  const [items, delayDays] = await Promise.all([
    merchantAccountItems(merchantId, table),
    options.delayDays ?? getMerchantPayoutSettings({ db: dynamo(), tableName: table }, merchantId).then((s) => s.delay_days),
  ]);
  const availableFrom = availableBefore(now, delayDays, zone).toISOString();
  const cursors = new Map(items.filter(isCursor).map((c) => [c.sk.split('#')[1], c]));
  const accounts = items.filter((a): a is Account => a.type === 'account' && a.kind === 'merchant').sort((a, b) => (a.currency < b.currency ? -1 : 1));
  const rows = await Promise.all(
    accounts.map(async (a) => {
      const settled = cursors.get(a.currency)?.delayed_through;
      const from = settled && settled > availableFrom ? settled : availableFrom;
      return { currency: a.currency, ...merchantBalances(a, await delayedSince(merchantId, a.currency, from, table)) };
    }),
  );
  const list = (key: 'available' | 'pending' | 'in_payout' | 'authorized') => rows.map((r) => ({ currency: r.currency, amount: r[key] }));
  return { object: 'balance', available: list('available'), pending: list('pending'), in_payout: list('in_payout'), authorized: list('authorized') };
}

/** Σ entry_amount of the merchant's delayed entries in `code` created at or after `from` (ISO 8601). */
export async function delayedSince(merchantId: string, code: string, from: string, table: string): Promise<number> {
  let total = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new QueryCommand({
        TableName: table,
        IndexName: 'gsi1',
        // '~' sorts after every ISO 8601 timestamp: the range runs to the end of the stream.
        KeyConditionExpression: 'gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to',
        ProjectionExpression: 'entry_amount',
        ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}`, ':from': entrySortKey(code, 'delayed', from), ':to': entrySortKey(code, 'delayed', '~') },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) total += Number(item.entry_amount ?? 0);
    start = page.LastEvaluatedKey;
  } while (start);
  return total;
}

type PartitionItem = (Account & { type?: string; sk?: string }) | (SettlementCursor & { type?: string; sk?: string; kind?: undefined });

function isCursor(item: PartitionItem): item is SettlementCursor & { sk: string } {
  return typeof item.sk === 'string' && item.sk.endsWith('#settlement') && item.type !== 'account';
}

/** Everything under the merchant's `ACCOUNT#` sort keys: its ledger accounts and its settlement cursors. */
async function merchantAccountItems(merchantId: string, table: string): Promise<PartitionItem[]> {
  const items: PartitionItem[] = [];
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
    items.push(...((page.Items ?? []) as PartitionItem[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** The merchant's ledger accounts (its settlement cursors share the sort key prefix: left out). */
export async function merchantAccounts(merchantId: string, table: string): Promise<Account[]> {
  return (await merchantAccountItems(merchantId, table)).filter((a): a is Account => !isCursor(a)) as Account[];
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

export interface IndexedAccount {
  merchant_id: string;
  currency: string;
}

/**
 * One page of the merchant accounts index (gsi2 `SETTLE_ACCOUNTS` / `<merchant>#<CUR>`, written once per account by
 * transferWrites): what the settle run pages through, the Summary and the operator's `settlements list` read.
 */
export async function accountsIndexPage(input: {
  table: string;
  /** @default the functions' client */
  db?: DynamoDBDocumentClient;
  merchantId?: string;
  limit?: number;
  startKey?: Record<string, unknown>;
}): Promise<{ accounts: IndexedAccount[]; next?: Record<string, unknown> }> {
  const page = await (input.db ?? dynamo()).send(
    new QueryCommand({
      TableName: input.table,
      IndexName: 'gsi2',
      KeyConditionExpression: input.merchantId ? 'gsi2pk = :pk AND begins_with(gsi2sk, :merchant)' : 'gsi2pk = :pk',
      ExpressionAttributeValues: { ':pk': SETTLE_ACCOUNTS, ...(input.merchantId ? { ':merchant': `${input.merchantId}#` } : {}) },
      ...(input.limit ? { Limit: input.limit } : {}),
      ...(input.startKey ? { ExclusiveStartKey: input.startKey } : {}),
    }),
  );
  const accounts = (page.Items ?? []).map((a) => {
    const sk = a.gsi2sk as string;
    const at = sk.lastIndexOf('#');
    return { merchant_id: sk.slice(0, at), currency: sk.slice(at + 1) };
  });
  return { accounts, ...(page.LastEvaluatedKey ? { next: page.LastEvaluatedKey } : {}) };
}

/** Every page of the accounts index (of one merchant, or all). */
export async function indexedAccounts(input: Omit<Parameters<typeof accountsIndexPage>[0], 'startKey' | 'limit'>): Promise<IndexedAccount[]> {
  const all: IndexedAccount[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await accountsIndexPage({ ...input, startKey });
    all.push(...page.accounts);
    startKey = page.next;
  } while (startKey);
  return all;
}
