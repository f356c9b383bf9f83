import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ChangeWriter, type WriteResult } from '../changes/writer';
import { dynamo } from '../commons/clients';
import { required } from '../commons/config';
import { ContendedError, InternalError, InvalidRequestError } from '../commons/errors';
import { payoutTransfer, type TransactItem } from '../ledger/transfers';
import type { PayoutSettings } from '../merchants/payouts';
import { getMerchantPayoutSettings } from '../merchants/repository';
import { availableBefore, businessTimeZone } from './calendar';
import { newScan, scanEntries, type EntryScan, type Windows } from './entries';
import { cursorKey, settlementId, settlementKey, type Settlement, type SettlementCursor, type SettlementStatus, type SettlementTotals } from './settlement';
import { settlementChange, settlementFromItem } from './subject';

/**
 * Settling one merchant in one currency for a cutoff (docs/settlement.md § Settling):
 *   load     the settlement of this cutoff (already made: that is the answer), the cursor, the payout settings;
 *   decide   the windows: each stream from the cursor's watermark to the cutoff's bound, never closer than
 *            SETTLE_HORIZON_MS to now (a late commit could still land there); then scan them (entries.ts), in
 *            chunks across invocations;
 *   persist  ONE writer transaction: the settlement (settlement.created), the cursor moved on condition of its
 *            version as read, and the net reserved (a pending payout transfer) when it is positive.
 * Exactly once by conditions: the settlement's id comes from (merchant, currency, cutoff), so the same cutoff
 * names the same item (its Put is refused the second time); the cursor's version condition makes the windows of
 * two runs disjoint and contiguous, whatever their cutoffs, so no entry is settled twice or skipped.
 */
export const SETTLE_HORIZON_MS = 15 * 60_000;

/**
 * SETTLEMENT_LAG_SECONDS overrides the 15 minutes, for a local cloud whose demo and end-to-end scenarios settle
 * payments made a moment ago (there, no Lambda outlives a few seconds). Never lower it where functions can run long.
 */
export function settleHorizonMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SETTLEMENT_LAG_SECONDS?.trim();
  if (!raw) return SETTLE_HORIZON_MS;
  const seconds = Number(raw);
  if (!Number.isInteger(seconds) || seconds < 0) {
    throw new InternalError('invalid_settlement_lag', `SETTLEMENT_LAG_SECONDS '${raw}' must be a whole number of seconds ≥ 0 (default 900).`);
  }
  return seconds * 1000;
}
export const EPOCH = new Date(0).toISOString();
/** Cursor races in one invocation before giving up (the Settle state's Retry runs it again). */
const MAX_ROUNDS = 5;

export type { PayoutSettings };

export interface SettlementDeps {
  table: string;
  now: () => Date;
  writer: ChangeWriter;
  payoutSettings: (merchantId: string) => Promise<PayoutSettings>;
  /** The platform that owns the payouts accounts. @default the ledger's DEFAULT_PLATFORM */
  platform?: string;
  /** How far behind now a window ends. @default settleHorizonMs() */
  horizonMs?: number;
  /** The scan budget of one invocation (entries.ts). */
  scan?: { maxEntries?: number; maxMs?: number };
}

export function settlementDeps(overrides: Partial<SettlementDeps> = {}): SettlementDeps {
  const table = overrides.table ?? required('TABLE_NAME');
  return {
    table,
    now: () => new Date(),
    writer: new ChangeWriter(table),
    // Consistent: a bank account changed a moment ago is the one a payout uses.
    payoutSettings: (merchantId) => getMerchantPayoutSettings({ db: dynamo(), tableName: table }, merchantId, { consistent: true }),
    ...overrides,
  };
}

/** What a chunked settle carries between invocations: the windows and what they were computed from, and the scan. */
export interface ScanState extends EntryScan {
  windows: Windows;
  /** The cursor as read (0: none yet); the final write is conditioned on it. */
  cursor_version: number;
  carried_in: number;
  delay_days: number;
  bank_account_last4: string;
}

export interface SettleItem {
  merchant_id: string;
  currency: string;
  cutoff: string;
  run_id: string;
  scan?: ScanState;
}

export type SettleResult =
  | (SettleItem & { done: false; scan: ScanState })
  | { done: true; settlement_id?: string; status?: SettlementStatus; net?: number; currency: string };

export async function settle(item: SettleItem, deps: SettlementDeps): Promise<SettleResult> {
  const cutoff = parseCutoff(item.cutoff);
  const id = settlementId(item.merchant_id, item.currency, item.cutoff);
  let scan = item.scan;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    if (!scan) {
      const existing = await getSettlement(deps.table, id);
      if (existing) return doneOf(existing);
      scan = await begin(item, cutoff, deps);
    }
    const read = await scanEntries({ table: deps.table, merchantId: item.merchant_id, currency: item.currency, windows: scan.windows, ...deps.scan }, scan);
    const { stream, last_key, totals: _, chunks, ...fixed } = scan;
    scan = { ...fixed, ...read.state };
    if (!read.done) return { ...item, done: false, scan };

    const totals = totalsOf(scan);
    // Nothing new, and nothing owed to the merchant: no settlement (a negative carry waits for entries to net it).
    if (totals.entry_count === 0 && totals.carried_in <= 0) return { done: true, currency: item.currency };

    const cursor = await getCursor(deps.table, item.merchant_id, item.currency);
    if ((cursor?.version ?? 0) !== scan.cursor_version) {
      scan = undefined; // moved while we scanned: read the windows again
      continue;
    }
    let result = await write(item, id, scan, totals, cursor, 'reserve', deps);
    if (!result.committed && result.refused === 'ledger' && result.ledger?.code === 'balance_insufficient') {
      // Later refunds took the headroom below the net: nothing is reserved, the net is carried into the next run.
      result = await write(item, id, scan, totals, cursor, 'refused', deps);
    }
    if (result.committed) return doneOf(result.written.settlement as Settlement);
    if (result.refused === 'settlement') return doneOf(settlementFromItem(result.current ?? (await getSettlementItem(deps.table, id))!));
    if (result.refused === 'cursor' || result.refused === 'contended') {
      scan = undefined;
      continue;
    }
    throw new InternalError('settlement_not_written', `Settlement ${id} of ${item.merchant_id} ${item.currency} was refused by ${result.all.join(', ')}.`);
  }
  throw new ContendedError('settlement_contended', `The settlement cursor of ${item.merchant_id} ${item.currency} moved ${MAX_ROUNDS} times while settling; run it again.`);
}

function parseCutoff(cutoff: string): Date {
  const t = new Date(cutoff);
  if (Number.isNaN(t.getTime()) || t.toISOString() !== cutoff) {
    throw new InvalidRequestError('invalid_cutoff', `cutoff '${cutoff}' is not an ISO 8601 UTC time with milliseconds; use e.g. 2026-12-02T00:00:00.000Z.`, { param: 'cutoff' });
  }
  return t;
}

/** Reads the cursor and settings and fixes the windows: later invocations of a chunked scan keep them. */
async function begin(item: SettleItem, cutoff: Date, deps: SettlementDeps): Promise<ScanState> {
  const [cursor, settings] = await Promise.all([getCursor(deps.table, item.merchant_id, item.currency), deps.payoutSettings(item.merchant_id)]);
  return {
    ...newScan(),
    windows: windowsOf(cursor, cutoff, settings.delay_days, deps.now(), businessTimeZone(), deps.horizonMs ?? settleHorizonMs()),
    cursor_version: cursor?.version ?? 0,
    carried_in: cursor?.carry ?? 0,
    delay_days: settings.delay_days,
    bank_account_last4: settings.bank_account_last4 ?? '',
  };
}

/** COMMON.md § calendar. A window whose end is not after its start is empty: [from, from). */
export function windowsOf(
  cursor: Pick<SettlementCursor, 'delayed_through' | 'immediate_through'> | undefined,
  cutoff: Date,
  delayDays: number,
  now: Date,
  zone = businessTimeZone(),
  horizonMs = SETTLE_HORIZON_MS,
): Windows {
  const horizon = now.getTime() - horizonMs;
  const window = (from: string, bound: Date) => {
    const to = new Date(Math.min(bound.getTime(), horizon)).toISOString();
    return { from, to: to > from ? to : from };
  };
  return {
    delayed: window(cursor?.delayed_through ?? EPOCH, availableBefore(cutoff, delayDays, zone)),
    immediate: window(cursor?.immediate_through ?? EPOCH, cutoff),
  };
}

function totalsOf(scan: ScanState): SettlementTotals {
  const t = scan.totals;
  return { ...t, carried_in: scan.carried_in, net: t.gross - t.refunds - t.fees - t.fx + t.adjustments + scan.carried_in };
}

async function write(item: SettleItem, id: string, scan: ScanState, totals: SettlementTotals, cursor: SettlementCursor | undefined, mode: 'reserve' | 'refused', deps: SettlementDeps): Promise<WriteResult> {
  const now = deps.now();
  const at = now.toISOString();
  const pays = totals.net > 0;
  const status: SettlementStatus = !pays ? 'carried_forward' : mode === 'reserve' ? 'in_payout' : 'failed';
  const settlement: Settlement = {
    id,
    merchant_id: item.merchant_id,
    currency: item.currency,
    status,
    cutoff: item.cutoff,
    delay_days: scan.delay_days,
    windows: scan.windows,
    totals,
    ...(pays
      ? {
          payout:
            status === 'in_payout'
              ? { status: 'pending' as const, attempts: 0, bank_account_last4: scan.bank_account_last4 }
              : {
                  status: 'failed' as const,
                  attempts: 0,
                  bank_account_last4: scan.bank_account_last4,
                  failure_code: 'balance_insufficient',
                  failure_message: 'Refunds after the cutoff left less than the net available to reserve; it is carried into the next settlement.',
                },
        }
      : {}),
    run_id: item.run_id,
    version: 0,
    created_at: at,
    updated_at: at,
  };
  const carry = status === 'in_payout' ? 0 : totals.net;
  const ref = { settlement_id: id, merchant_id: item.merchant_id, currency: item.currency, platform: deps.platform };
  return deps.writer.write({
    objects: [settlementChange(undefined, settlement)],
    transfers: status === 'in_payout' ? [payoutTransfer(ref, 'reserve', totals.net, now)] : [],
    items: {
      cursor: cursorUpdate(deps.table, item.merchant_id, item.currency, cursor, {
        delayed_through: scan.windows.delayed.to,
        immediate_through: scan.windows.immediate.to,
        carry,
        last_settlement_id: id,
      }, now),
    },
    request: null,
    now,
  });
}

/**
 * The cursor's Update, conditioned on its version as read (absent: on there being none), version + 1. While the
 * carry is negative the cursor sits in gsi2 `NEGATIVE_BALANCE` / `<negative_since>#<merchant>#<CUR>` (sparse: only
 * those cursors), which the negative-balance alert reads (reconcile.ts).
 */
export function cursorUpdate(
  table: string,
  merchantId: string,
  currency: string,
  before: SettlementCursor | undefined,
  set: Partial<Pick<SettlementCursor, 'delayed_through' | 'immediate_through' | 'last_settlement_id'>> & { carry: number },
  now: Date,
): TransactItem {
  const negativeSince = set.carry < 0 ? (before?.negative_since ?? now.toISOString()) : undefined;
  const fields: Record<string, unknown> = {
    type: 'settlement_cursor',
    merchant_id: merchantId,
    currency,
    ...set,
    version: (before?.version ?? 0) + 1,
    updated_at: now.toISOString(),
    ...(negativeSince ? { negative_since: negativeSince, gsi2pk: NEGATIVE_BALANCE, gsi2sk: `${negativeSince}#${merchantId}#${currency}` } : {}),
  };
  const names: Record<string, string> = { '#version': 'version' };
  const values: Record<string, unknown> = {};
  const sets = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v], i) => {
      names[`#f${i}`] = k;
      values[`:f${i}`] = v;
      return `#f${i} = :f${i}`;
    });
  const removes = negativeSince ? [] : ['negative_since', 'gsi2pk', 'gsi2sk'].map((k, i) => ((names[`#r${i}`] = k), `#r${i}`));
  if (before) values[':version'] = before.version;
  return {
    Update: {
      TableName: table,
      Key: cursorKey(merchantId, currency),
      UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
      ConditionExpression: before ? '#version = :version' : 'attribute_not_exists(#version)',
      ExpressionAttributeNames: names,
      ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    },
  };
}

export const NEGATIVE_BALANCE = 'NEGATIVE_BALANCE';

export async function getCursor(table: string, merchantId: string, currency: string): Promise<SettlementCursor | undefined> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: table, Key: cursorKey(merchantId, currency), ConsistentRead: true }));
  if (!Item) return undefined;
  const { pk, sk, type, gsi2pk, gsi2sk, updated_at, ...cursor } = Item;
  return cursor as SettlementCursor;
}

async function getSettlementItem(table: string, id: string): Promise<Record<string, unknown> | undefined> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: table, Key: settlementKey(id), ConsistentRead: true }));
  return Item;
}

export async function getSettlement(table: string, id: string): Promise<Settlement | undefined> {
  const item = await getSettlementItem(table, id);
  return item && settlementFromItem(item);
}

function doneOf(s: Settlement): SettleResult {
  return { done: true, settlement_id: s.id, status: s.status, net: s.totals.net, currency: s.currency };
}
