import { BatchGetCommand, GetCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../commons/clients';
import { required } from '../commons/config';
import { MERCHANT_ACCOUNT_PREFIX } from '../ledger/accounts';
import { ENTRY_STREAMS, entrySortKey, transferKey, type EntryStream, type Transfer } from '../ledger/transfers';
import { settlementKey, type Settlement, type SettlementStatus } from './settlement';

/**
 * What the settlement API, the reports, the bills and the operator CLI read, all scoped by the merchant:
 *   - a settlement by key (another merchant's id reads as missing);
 *   - the merchant's settlements, gsi1 `MERCHANT#<id>` / `SETTLEMENT#<created_at>#<id>`, newest first;
 *   - a settlement's entries: its two windows of the merchant's gsi1 `ENTRY#<CUR>#<stream>#<created_at>#<id>`,
 *     the delayed stream first, then the immediate one, each oldest first (the report's order);
 *   - the orders an entry page names (BatchGet, for merchant_order_no).
 * It only reads, except `saveReport` (the Report step's digests). The Lambda functions use the shared client; the
 * CLI passes its own (the operator's credentials).
 */
export interface StoreDeps {
  db: Pick<DynamoDBDocumentClient, 'send'>;
  table: string;
}

/** A ledger entry as indexed (transfers.ts transferWrites): the transfer plus its stream and signed amount. */
export type EntryItem = Transfer & { entry_stream: EntryStream; entry_amount: number; gsi1sk: string };

/** Where a read of a settlement's entries resumes: at an entry's gsi1 sort key (inclusive) or after one (exclusive). */
export type EntryPosition = { at: string } | { after: string };

export class SettlementStore {
  constructor(private readonly deps: StoreDeps = { db: dynamo(), table: required('TABLE_NAME') }) {}

  get table(): string {
    return this.deps.table;
  }

  async get(merchantId: string, id: string): Promise<Settlement | undefined> {
    const s = await this.byId(id);
    return s && s.merchant_id === merchantId ? s : undefined;
  }

  /** Unscoped: for the Report step and the operator, who act on any merchant's settlement. */
  async byId(id: string): Promise<Settlement | undefined> {
    const { Item } = await this.deps.db.send(new GetCommand({ TableName: this.deps.table, Key: settlementKey(id), ConsistentRead: true }));
    return Item ? fromItem(Item) : undefined;
  }

  /** Newest first, after `after` (a settlement of the merchant), filtered by currency and status; `limit + 1` read for has_more. */
  async list(
    merchantId: string,
    opts: { limit: number; after?: Settlement; currency?: string; status?: SettlementStatus },
  ): Promise<{ settlements: Settlement[]; hasMore: boolean }> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':pk': `MERCHANT#${merchantId}`, ':lower': 'SETTLEMENT#', ':upper': 'SETTLEMENT$' };
    const filters: string[] = [];
    if (opts.currency) {
      names['#currency'] = 'currency';
      values[':currency'] = opts.currency;
      filters.push('#currency = :currency');
    }
    if (opts.status) {
      names['#status'] = 'status';
      values[':status'] = opts.status;
      filters.push('#status = :status');
    }
    const found: Settlement[] = [];
    let startKey: Record<string, unknown> | undefined = opts.after
      ? { ...settlementKey(opts.after.id), gsi1pk: values[':pk'], gsi1sk: `SETTLEMENT#${opts.after.created_at}#${opts.after.id}` }
      : undefined;
    do {
      const page = await this.deps.db.send(
        new QueryCommand({
          TableName: this.deps.table,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :pk AND gsi1sk BETWEEN :lower AND :upper',
          ExpressionAttributeNames: filters.length ? names : undefined,
          ExpressionAttributeValues: values,
          FilterExpression: filters.length ? filters.join(' AND ') : undefined,
          ScanIndexForward: false,
          ExclusiveStartKey: startKey,
          Limit: opts.limit + 1,
        }),
      );
      found.push(...(page.Items ?? []).map(fromItem));
      startKey = page.LastEvaluatedKey;
    } while (startKey && found.length <= opts.limit);
    return { settlements: found.slice(0, opts.limit), hasMore: found.length > opts.limit };
  }

  /** One entry of the merchant by its transfer id (a pagination cursor), if it is one of `settlement`'s. */
  async entryOf(settlement: Settlement, id: string): Promise<EntryItem | undefined> {
    const { Item } = await this.deps.db.send(new GetCommand({ TableName: this.deps.table, Key: transferKey(id) }));
    if (!Item || Item.merchant_id !== settlement.merchant_id || Item.entry_stream === undefined) return undefined;
    const entry = Item as EntryItem;
    const window = settlement.windows[entry.entry_stream];
    const inside = entry.currency === settlement.currency && window && entry.created_at >= window.from && entry.created_at < window.to;
    return inside ? entry : undefined;
  }

  /**
   * The settlement's entries in report order, page by page as they are consumed. `[from, to)` of each window is
   * `BETWEEN entrySortKey(from) AND entrySortKey(to)`: a key at `to` itself always has `#<id>` after the time,
   * so it sorts above the bound and stays out.
   */
  async *entries(settlement: Settlement, from?: EntryPosition, pageSize?: number): AsyncGenerator<EntryItem> {
    const cursor = from && ('at' in from ? from.at : from.after);
    const cursorStream = cursor ? streamOf(cursor) : undefined;
    for (const stream of ENTRY_STREAMS) {
      if (cursorStream && ENTRY_STREAMS.indexOf(stream) < ENTRY_STREAMS.indexOf(cursorStream)) continue;
      const window = settlement.windows[stream];
      if (!window || window.from >= window.to) continue;
      let lower = entrySortKey(settlement.currency, stream, window.from);
      const upper = entrySortKey(settlement.currency, stream, window.to);
      let startKey: Record<string, unknown> | undefined;
      if (cursor && stream === cursorStream) {
        if ('at' in from!) lower = cursor > lower ? cursor : lower;
        else startKey = { gsi1pk: `MERCHANT#${settlement.merchant_id}`, gsi1sk: cursor, ...transferKey(idOf(cursor)) };
      }
      do {
        const page = await this.deps.db.send(
          new QueryCommand({
            TableName: this.deps.table,
            IndexName: 'gsi1',
            KeyConditionExpression: 'gsi1pk = :pk AND gsi1sk BETWEEN :lower AND :upper',
            ExpressionAttributeValues: { ':pk': `MERCHANT#${settlement.merchant_id}`, ':lower': lower, ':upper': upper },
            ExclusiveStartKey: startKey,
            Limit: pageSize,
          }),
        );
        for (const item of page.Items ?? []) yield item as EntryItem;
        startKey = page.LastEvaluatedKey;
      } while (startKey);
    }
  }

  /** merchant_order_no of each of the merchant's orders among `ids` (another merchant's order reads as missing). */
  async orderNumbers(merchantId: string, ids: Iterable<string>): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const all = [...new Set(ids)];
    for (let i = 0; i < all.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = all.slice(i, i + 100).map((id) => ({ pk: `ORDER#${id}`, sk: 'ORDER' }));
      for (let attempt = 0; keys?.length; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** attempt)));
        const res = await this.deps.db.send(
          new BatchGetCommand({
            RequestItems: {
              [this.deps.table]: { Keys: keys, ProjectionExpression: 'id, merchant_id, merchant_order_no' },
            },
          }),
        );
        for (const item of res.Responses?.[this.deps.table] ?? []) {
          if (item.merchant_id === merchantId && typeof item.merchant_order_no === 'string') out.set(item.id as string, item.merchant_order_no);
        }
        keys = res.UnprocessedKeys?.[this.deps.table]?.Keys as Record<string, unknown>[] | undefined;
      }
    }
    return out;
  }

  /** The currencies the merchant holds a ledger account or a settlement cursor in (`ACCOUNT#<CUR>#…`). */
  async currencies(merchantId: string): Promise<string[]> {
    const found = new Set<string>();
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.deps.db.send(
        new QueryCommand({
          TableName: this.deps.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}`, ':prefix': MERCHANT_ACCOUNT_PREFIX },
          ProjectionExpression: 'sk',
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) found.add(String(item.sk).split('#')[1]!);
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return [...found].sort();
  }

  /**
   * The merchant's transfers of kinds `kinds` created in `[start, end)`: the entries of each currency (both
   * streams) and the transfers that are no entry (`TRANSFER#<created_at>#<id>`: a converted order's capture,
   * which credits the fx account, not the merchant).
   */
  async transfersBetween(merchantId: string, start: Date, end: Date, filter: { expression: string; names: Record<string, string>; values: Record<string, unknown> }): Promise<Transfer[]> {
    const [from, to] = [start.toISOString(), end.toISOString()];
    const ranges: Array<[string, string]> = [[`TRANSFER#${from}`, `TRANSFER#${to}`]];
    for (const code of await this.currencies(merchantId)) {
      for (const stream of ENTRY_STREAMS) ranges.push([entrySortKey(code, stream, from), entrySortKey(code, stream, to)]);
    }
    const out: Transfer[] = [];
    for (const [lower, upper] of ranges) {
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await this.deps.db.send(
          new QueryCommand({
            TableName: this.deps.table,
            IndexName: 'gsi1',
            KeyConditionExpression: 'gsi1pk = :pk AND gsi1sk BETWEEN :lower AND :upper',
            FilterExpression: filter.expression,
            ExpressionAttributeNames: filter.names,
            ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}`, ':lower': lower, ':upper': upper, ...filter.values },
            ExclusiveStartKey: startKey,
          }),
        );
        out.push(...((page.Items ?? []) as Transfer[]));
        startKey = page.LastEvaluatedKey;
      } while (startKey);
    }
    return out;
  }

  /** The Report step's digests, on the settlement (its entries never change: the windows are fixed at creation). */
  async saveReport(id: string, report: unknown): Promise<void> {
    await this.deps.db.send(
      new UpdateCommand({
        TableName: this.deps.table,
        Key: settlementKey(id),
        UpdateExpression: 'SET #report = :report',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#report': 'report' },
        ExpressionAttributeValues: { ':report': report },
      }),
    );
  }
}

/** `ENTRY#<CUR>#<stream>#…` → the stream. */
export function streamOf(sortKey: string): EntryStream {
  const stream = sortKey.split('#')[2] as EntryStream;
  return ENTRY_STREAMS.includes(stream) ? stream : 'delayed';
}

/** The transfer id at the end of an entry's sort key (ids hold no '#'). */
const idOf = (sortKey: string) => sortKey.slice(sortKey.lastIndexOf('#') + 1);

function fromItem(item: Record<string, unknown>): Settlement {
  const { pk, sk, type, gsi1pk, gsi1sk, gsi2pk, gsi2sk, ...settlement } = item;
  return settlement as unknown as Settlement;
}
