import { createHash } from 'node:crypto';

/**
 * Settlements: what a run pays one merchant in one settlement currency (docs/settlement.md). This module is the one
 * definition of the items; settle.ts writes them, payout.ts resolves them, the API and the report read them.
 *
 *   settlement  pk SETTLEMENT#<id>          sk SETTLEMENT              the settlement (Subject: settlements/subject.ts)
 *               gsi1 MERCHANT#<merchant> / SETTLEMENT#<created_at>#<id>: the merchant's list, newest last
 *   cursor      pk MERCHANT#<merchant>      sk ACCOUNT#<CUR>#settlement  the watermarks: what is settled so far
 *               (in the merchant's partition beside its ledger account, so the balance is still one Query)
 *
 * Entries are never marked: a settlement owns the entries of its two windows, `[from, to)` of the merchant's
 * gsi1 range `ENTRY#<CUR>#delayed#…` and `ENTRY#<CUR>#immediate#…` (ledger/transfers.ts, entrySortKey). Each run
 * moves the cursor from the windows' start to their end in the transaction that creates the settlement, on
 * condition that the cursor is as read: windows are contiguous and disjoint, so every entry sits in exactly one
 * settlement, and a second run (same cutoff or another, at once or later) finds nothing left to take.
 */
export const SETTLEMENT_STATUSES = [
  /** The net is reserved (a pending payout transfer); the payout is in flight. */
  'in_payout',
  'paid',
  /** The payout failed for good: the reserve is voided, the net is carried into the next settlement. */
  'failed',
  /** Net ≤ 0 (refunds after payout, or fees): nothing to pay; the net is carried into the next settlement. */
  'carried_forward',
] as const;
export type SettlementStatus = (typeof SETTLEMENT_STATUSES)[number];

/** One window of a stream of entries: `[from, to)` of their created_at, ISO 8601 UTC. */
export interface EntryWindow {
  from: string;
  to: string;
}

/** Per settlement currency, in its minor units. net = gross − refunds − fees − fx + adjustments + carried_in. */
export interface SettlementTotals {
  /** Captures credited to the merchant (conversions: at the base rate, in the settlement currency). */
  gross: number;
  refunds: number;
  fees: number;
  /** The FX spread of conversions (the markup). */
  fx: number;
  /** Signed. */
  adjustments: number;
  /** Signed: what earlier settlements carried forward (a negative net, a failed payout). */
  carried_in: number;
  /** Signed: what this settlement pays (> 0) or carries forward (≤ 0). */
  net: number;
  entry_count: number;
}

export interface SettlementPayout {
  status: 'pending' | 'paid' | 'failed';
  /** The payout channel's reference, once paid. */
  reference?: string;
  failure_code?: string;
  failure_message?: string;
  attempts: number;
  bank_account_last4: string;
  paid_at?: string;
}

/** The report's digests (report.ts): one per part of at most REPORT_PART_LINES lines, and one of the whole CSV. */
export interface SettlementReport {
  lines: number;
  sha256: string;
  parts: Array<{ part: number; lines: number; sha256: string; bytes: number }>;
}

export interface Settlement {
  id: string;
  merchant_id: string;
  /** The settlement currency. */
  currency: string;
  status: SettlementStatus;
  /** The run's cutoff: entries available before it. */
  cutoff: string;
  /** The merchant's payout delay the windows were computed with. */
  delay_days: number;
  windows: { delayed: EntryWindow; immediate: EntryWindow };
  totals: SettlementTotals;
  payout?: SettlementPayout;
  report?: SettlementReport;
  /** The Step Functions execution (or CLI run) that created it. */
  run_id: string;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface SettlementCursor {
  merchant_id: string;
  currency: string;
  /** Each stream is settled up to here (exclusive); absent: from the beginning. */
  delayed_through?: string;
  immediate_through?: string;
  /** Signed minor units carried into the next settlement. */
  carry: number;
  /** When the merchant's carry went below zero, while it stays there (the negative-balance alert). */
  negative_since?: string;
  last_settlement_id?: string;
  version: number;
}

export const settlementKey = (id: string) => ({ pk: `SETTLEMENT#${id}`, sk: 'SETTLEMENT' });
export const cursorKey = (merchantId: string, currencyCode: string) => ({ pk: `MERCHANT#${merchantId}`, sk: `ACCOUNT#${currencyCode}#settlement` });
export const settlementListKey = (s: Pick<Settlement, 'merchant_id' | 'created_at' | 'id'>) => ({ gsi1pk: `MERCHANT#${s.merchant_id}`, gsi1sk: `SETTLEMENT#${s.created_at}#${s.id}` });

/**
 * `stl_<24 base32>`: derived from (merchant, currency, cutoff), so running the same cutoff again names the same
 * settlement and its Put is refused: the first run's settlement is the answer.
 */
export function settlementId(merchantId: string, currencyCode: string, cutoff: string): string {
  const digest = createHash('sha256').update(`${merchantId}\n${currencyCode}\n${cutoff}`).digest();
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let out = '';
  for (let i = 0; i < 24; i++) out += alphabet[digest[i]! % 32];
  return `stl_${out}`;
}

export const SETTLEMENT_ID = /^stl_[a-z2-7]{24}$/;
