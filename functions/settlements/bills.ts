import { createHash } from 'node:crypto';
import { InternalError, InvalidRequestError } from '../commons/errors';
import type { Transfer } from '../ledger/transfers';
import { businessTimeZone, dayBounds } from './calendar';
import { csvLine, REPORT_PART_BYTES, REPORT_PART_LINES, type Cell } from './report';
import type { SettlementStore } from './store';

/**
 * The daily trade bill (docs/settlement.md § Bills), in the manner of Alipay's trade bill and WeChat Pay's
 * tradebill: every payment (capture) and refund of the merchant in one business day (UTC, or BUSINESS_TIME_ZONE),
 * as the payer saw it — the order's currency and amount, before fees and before any conversion — so the merchant
 * can tick its own books off against it before settlement. Read from the ledger: the capture and refund
 * transfers that touch the channel's receivable account (exactly one per capture and per refund, converted or not).
 *
 *   id,type,order_id,merchant_order_no,refund_id,payment_id,created_at,currency,amount
 *
 * `type` is `payment` or `refund`; `amount` is signed (a refund is negative), integer minor units. Lines are in
 * created_at order, then one `total` line per currency: its amount is the day's Σ, its `id` the number of lines.
 * Same CSV rules and Content-Digest as the settlement report; a day longer than one response is served in parts
 * the same way (`?part=N`).
 */
export const BILL_HEADER = ['id', 'type', 'order_id', 'merchant_order_no', 'refund_id', 'payment_id', 'created_at', 'currency', 'amount'] as const;

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** The business day's bounds, or a 400 naming the value and the fix. */
export function billDay(day: string, zone = businessTimeZone()): { start: Date; end: Date } {
  try {
    if (!DAY.test(day)) throw new Error('format');
    return dayBounds(day, zone);
  } catch (error) {
    if (error instanceof InternalError || (error as Error).message === 'format') {
      throw new InvalidRequestError('parameter_invalid', `Invalid bill date '${day}': use a calendar date as YYYY-MM-DD, e.g. /v1/bills/2026-12-01 (business days are ${zone} days).`, {
        param: 'date',
      });
    }
    throw error;
  }
}

export interface BillPart {
  part: number;
  lines: number;
  bytes: number;
  sha256: string;
  text: string;
}

export interface Bill {
  day: string;
  time_zone: string;
  lines: number;
  sha256: string;
  parts: BillPart[];
}

export async function buildBill(store: SettlementStore, merchantId: string, day: string, zone = businessTimeZone()): Promise<Bill> {
  const { start, end } = billDay(day, zone);
  const transfers = await store.transfersBetween(merchantId, start, end, {
    expression: '#kind IN (:capture, :refund) AND (begins_with(#debit, :receivable) OR begins_with(#credit, :receivable))',
    names: { '#kind': 'kind', '#debit': 'debit', '#credit': 'credit' },
    values: { ':capture': 'capture', ':refund': 'refund', ':receivable': 'receivable:' },
  });
  transfers.sort((a, b) => (a.created_at === b.created_at ? (a.id < b.id ? -1 : 1) : a.created_at < b.created_at ? -1 : 1));
  const numbers = await store.orderNumbers(merchantId, transfers.flatMap((t) => (t.order_id ? [t.order_id] : [])));
  const totals = new Map<string, { count: number; amount: number }>();
  const lines = [csvLine(BILL_HEADER)];
  for (const t of transfers) {
    const row = billLine(t, t.order_id ? numbers.get(t.order_id) : undefined);
    lines.push(csvLine(row));
    const total = totals.get(t.currency) ?? { count: 0, amount: 0 };
    total.count += 1;
    total.amount += row[8] as number;
    totals.set(t.currency, total);
  }
  for (const [code, total] of [...totals].sort(([a], [b]) => (a < b ? -1 : 1))) {
    lines.push(csvLine([String(total.count), 'total', undefined, undefined, undefined, undefined, start.toISOString(), code, total.amount]));
  }
  return { day, time_zone: zone, ...split(lines) };
}

export function billLine(t: Transfer, merchantOrderNo: string | undefined): Cell[] {
  const payment = t.kind === 'capture';
  return [t.id, payment ? 'payment' : 'refund', t.order_id, merchantOrderNo, t.refund_id, t.payment_id, t.created_at, t.currency, payment ? t.amount : -t.amount];
}

/** Parts of at most REPORT_PART_LINES lines and REPORT_PART_BYTES bytes, as the settlement report's. */
function split(lines: string[]): { lines: number; sha256: string; parts: BillPart[] } {
  const whole = createHash('sha256');
  const parts: BillPart[] = [];
  let chunk: string[] = [];
  let bytes = 0;
  const close = () => {
    const text = chunk.join('');
    parts.push({ part: parts.length + 1, lines: chunk.length, bytes, sha256: createHash('sha256').update(text).digest('hex'), text });
    chunk = [];
    bytes = 0;
  };
  for (const line of lines) {
    const size = Buffer.byteLength(line);
    if (chunk.length && (chunk.length >= REPORT_PART_LINES || bytes + size > REPORT_PART_BYTES)) close();
    chunk.push(line);
    bytes += size;
    whole.update(line);
  }
  close();
  return { lines: lines.length, sha256: whole.digest('hex'), parts };
}
