import { QueryCommand, type QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../commons/clients';
import { logger } from '../commons/logger';
import { ENTRY_STREAMS, entrySortKey, type EntryStream, type TransferKind } from '../ledger/transfers';
import type { EntryWindow, SettlementTotals } from './settlement';

/**
 * Reading a settlement's entries: the merchant's ledger entries of one currency whose created_at falls in a window
 * `[from, to)` of each stream, from gsi1 (`MERCHANT#<m>` / `ENTRY#<CUR>#<stream>#<created_at>#<transfer id>`).
 * ISO 8601 UTC timestamps of one length sort as they compare, so BETWEEN key(from) AND key(to) is exactly
 * `[from, to)`: an entry created at `from` sorts after `…#<from>`, one created at `to` after `…#<to>`.
 *
 * The scan is chunked: at most MAX_SCAN_ENTRIES entries or MAX_SCAN_MS per call, resumable from an EntryScan that
 * holds where it stopped (DynamoDB's LastEvaluatedKey, four short strings) and the totals so far. So a merchant with
 * 100,000 entries settles over a few invocations of the Settle state, each far from Lambda's 15 minutes, and the
 * state that travels through Step Functions stays under a kilobyte (its limit is 256 KB).
 */
export const MAX_SCAN_ENTRIES = 20_000;
export const MAX_SCAN_MS = 60_000;
/** Page size: DynamoDB stops a page at 1 MB anyway; a bound keeps a call within MAX_SCAN_ENTRIES. */
const PAGE = 5_000;

export type EntryTotals = Pick<SettlementTotals, 'gross' | 'refunds' | 'fees' | 'fx' | 'adjustments' | 'entry_count'>;

export const zeroTotals = (): EntryTotals => ({ gross: 0, refunds: 0, fees: 0, fx: 0, adjustments: 0, entry_count: 0 });

export interface Windows {
  delayed: EntryWindow;
  immediate: EntryWindow;
}

/** Where a chunked scan of a settlement's two windows stands. */
export interface EntryScan {
  /** The stream being read (delayed first). */
  stream: EntryStream;
  /** Where the stream's Query stopped; absent: at the window's start. */
  last_key?: Record<string, string>;
  /** Over the entries read so far, both streams. */
  totals: EntryTotals;
  /** Invocations so far (the history a 100,000-entry run costs: bench/settlement.ts). */
  chunks: number;
}

export const newScan = (): EntryScan => ({ stream: 'delayed', totals: zeroTotals(), chunks: 0 });

/**
 * Adds one entry to the totals by the kind of its transfer. `entry_amount` is signed (+ credits the merchant), so
 * every line keeps its sign: a reversal of a conversion lowers gross, a debit adjustment is a negative adjustment,
 * and Σ entry_amount = gross − refunds − fees − fx + adjustments whatever the entries are.
 */
export function classify(totals: EntryTotals, kind: TransferKind | string, amount: number): void {
  totals.entry_count += 1;
  switch (kind) {
    case 'capture':
    case 'conversion':
      totals.gross += amount;
      return;
    case 'refund':
      totals.refunds -= amount;
      return;
    case 'fee':
      totals.fees -= amount;
      return;
    case 'fx_spread':
      totals.fx -= amount;
      return;
    case 'adjustment':
      totals.adjustments += amount;
      return;
    default:
      // Not a kind entryOf produces today; counted as an adjustment, so the money is still settled and the sum holds.
      logger.warn('settlement: entry of an unexpected kind counted as an adjustment', { kind, amount });
      totals.adjustments += amount;
  }
}

export interface ScanOptions {
  table: string;
  merchantId: string;
  currency: string;
  windows: Windows;
  /** @default MAX_SCAN_ENTRIES */
  maxEntries?: number;
  /** @default MAX_SCAN_MS */
  maxMs?: number;
}

/** Reads on from `state` until both windows are read (done) or the call's budget is spent. Does not mutate `state`. */
export async function scanEntries(options: ScanOptions, state: EntryScan): Promise<{ done: boolean; state: EntryScan }> {
  const maxEntries = options.maxEntries ?? MAX_SCAN_ENTRIES;
  const deadline = Date.now() + (options.maxMs ?? MAX_SCAN_MS);
  const next: EntryScan = { stream: state.stream, ...(state.last_key ? { last_key: state.last_key } : {}), totals: { ...state.totals }, chunks: state.chunks + 1 };
  let read = 0;
  for (;;) {
    const window = options.windows[next.stream];
    if (window.to > window.from) {
      while (read < maxEntries && Date.now() < deadline) {
        const page = await queryPage(options, next.stream, window, next.last_key, Math.min(PAGE, maxEntries - read));
        for (const item of page.Items ?? []) classify(next.totals, item.kind as string, item.entry_amount as number);
        read += page.Items?.length ?? 0;
        if (!page.LastEvaluatedKey) {
          delete next.last_key;
          break;
        }
        next.last_key = page.LastEvaluatedKey as Record<string, string>;
      }
      if (next.last_key) return { done: false, state: next };
    }
    const i = ENTRY_STREAMS.indexOf(next.stream);
    if (i === ENTRY_STREAMS.length - 1) return { done: true, state: next };
    next.stream = ENTRY_STREAMS[i + 1]!;
  }
}

/** Every entry of one window, for the checks that re-read them (reconcile.ts) and the report. */
export async function* entriesOf(options: Omit<ScanOptions, 'windows' | 'maxEntries' | 'maxMs'>, stream: EntryStream, window: EntryWindow, projection?: string[]) {
  if (window.to <= window.from) return;
  let last: Record<string, string> | undefined;
  do {
    const page = await queryPage(options, stream, window, last, PAGE, projection);
    for (const item of page.Items ?? []) yield item;
    last = page.LastEvaluatedKey as Record<string, string> | undefined;
  } while (last);
}

async function queryPage(
  options: Pick<ScanOptions, 'table' | 'merchantId' | 'currency'>,
  stream: EntryStream,
  window: EntryWindow,
  start: Record<string, string> | undefined,
  limit: number,
  projection = ['kind', 'entry_amount'],
): Promise<QueryCommandOutput> {
  const names = Object.fromEntries(projection.map((p, i) => [`#p${i}`, p]));
  return dynamo().send(
    new QueryCommand({
      TableName: options.table,
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to',
      ExpressionAttributeValues: {
        ':pk': `MERCHANT#${options.merchantId}`,
        ':from': entrySortKey(options.currency, stream, window.from),
        ':to': entrySortKey(options.currency, stream, window.to),
      },
      ProjectionExpression: Object.keys(names).join(', '),
      ExpressionAttributeNames: names,
      Limit: limit,
      ...(start ? { ExclusiveStartKey: start } : {}),
    }),
  );
}
