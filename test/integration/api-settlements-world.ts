import { BatchWriteCommand, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import { feesAccount, fxSpreadAccount, merchantAccount, receivableAccount } from '../../functions/ledger/accounts';
import { transferWrites, type ConversionDetails, type Transfer, type TransferKind } from '../../functions/ledger/transfers';
import { settlementId, settlementKey, settlementListKey, type EntryWindow, type Settlement, type SettlementStatus } from '../../functions/settlements/settlement';
import type { EntryItem } from '../../functions/settlements/store';

/**
 * Settlements and their entries written straight into DynamoDB Local through the real key shapes: transfer items
 * exactly as transferWrites builds them (its Puts), settlement items under settlementKey / settlementListKey, and
 * orders with the fields the report reads. What the settle engine would write, without the engine.
 */
export interface EntrySpec {
  kind: Extract<TransferKind, 'capture' | 'fee' | 'refund' | 'conversion' | 'fx_spread' | 'adjustment'>;
  amount: number;
  at: string;
  order_id?: string;
  refund_id?: string;
  /** adjustment: credit (+) or debit (−) the merchant. */
  credit?: boolean;
  fx?: ConversionDetails;
  currency?: string;
}

export function transferOf(merchantId: string, spec: EntrySpec, seq: number): Transfer {
  const cur = spec.currency ?? 'USD';
  const order = spec.order_id ?? `ord_${seq}`;
  const m = merchantAccount(merchantId, cur);
  const other: Record<EntrySpec['kind'], string> = {
    capture: receivableAccount('sandbox', cur, order),
    conversion: `fx:payplane:${cur}:0`,
    fee: feesAccount(cur, order),
    fx_spread: fxSpreadAccount(cur, order),
    refund: receivableAccount('sandbox', cur, order),
    adjustment: feesAccount(cur, order),
  };
  const credits = spec.kind === 'capture' || spec.kind === 'conversion' || (spec.kind === 'adjustment' && spec.credit);
  const id = spec.kind === 'refund' ? `tr_${spec.refund_id ?? `re_${seq}`}_refund` : `tr_${order}_${spec.kind}${spec.kind === 'adjustment' ? `_${seq}` : ''}`;
  return {
    id,
    debit: credits ? other[spec.kind] : m,
    credit: credits ? m : other[spec.kind],
    amount: spec.amount,
    currency: cur,
    kind: spec.kind,
    phase: 'posted',
    merchant_id: merchantId,
    created_at: spec.at,
    ...(spec.kind === 'adjustment' ? {} : { order_id: order }),
    ...(spec.kind === 'refund' ? { refund_id: spec.refund_id ?? `re_${seq}` } : {}),
    ...(spec.fx ? { fx: spec.fx } : {}),
  };
}

/** The transfer items transferWrites would Put (index keys, entry_stream, entry_amount), batch-written. */
export async function seedEntries(table: string, merchantId: string, specs: EntrySpec[]): Promise<EntryItem[]> {
  const items = specs.map((spec, i) => {
    const t = transferOf(merchantId, spec, i);
    const put = transferWrites(table, [t], new Date(spec.at)).find((w) => w.Put)!.Put!;
    return put.Item as unknown as EntryItem;
  });
  await batchPut(table, items as unknown as Record<string, unknown>[]);
  return items;
}

/** Real ledger transactions (transfers and account counters), for the bill's currencies and small sets. */
export async function postTransfers(table: string, transfers: Transfer[]): Promise<void> {
  for (const t of transfers) {
    await dynamo().send(new TransactWriteCommand({ TransactItems: transferWrites(table, [t], new Date(t.created_at)) }));
  }
}

export async function batchPut(table: string, items: Record<string, unknown>[]): Promise<void> {
  const chunks: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
  // A few writers at once: DynamoDB Local takes batches concurrently.
  const workers = Array.from({ length: 4 }, async () => {
    for (let chunk = chunks.shift(); chunk; chunk = chunks.shift()) {
      let pending: Record<string, unknown>[] = chunk.map((Item) => ({ PutRequest: { Item } }));
      while (pending.length) {
        const res = await dynamo().send(new BatchWriteCommand({ RequestItems: { [table]: pending } }));
        pending = (res.UnprocessedItems?.[table] ?? []) as Record<string, unknown>[];
      }
    }
  });
  await Promise.all(workers);
}

export async function putOrders(table: string, merchantId: string, orders: Array<{ id: string; no: string }>): Promise<void> {
  await batchPut(
    table,
    orders.map((o) => ({ pk: `ORDER#${o.id}`, sk: 'ORDER', type: 'order', id: o.id, merchant_id: merchantId, merchant_order_no: o.no, amount: 1, currency: 'USD', status: 'succeeded' })),
  );
}

/** A settlement over `windows` whose totals are computed from `entries` (an oracle apart from the report). */
export async function putSettlement(
  table: string,
  input: {
    merchantId: string;
    entries: Array<Pick<EntryItem, 'id' | 'kind' | 'entry_amount'>>;
    windows: { delayed: EntryWindow; immediate: EntryWindow };
    createdAt: string;
    currency?: string;
    status?: SettlementStatus;
    carriedIn?: number;
    last4?: string;
  },
): Promise<Settlement> {
  const t = oracleTotals(input.entries);
  const carried = input.carriedIn ?? 0;
  const currency = input.currency ?? 'USD';
  const s: Settlement = {
    id: settlementId(input.merchantId, currency, input.createdAt + newId('x')),
    merchant_id: input.merchantId,
    currency,
    status: input.status ?? 'paid',
    cutoff: input.createdAt,
    delay_days: 1,
    windows: input.windows,
    totals: { gross: t.gross, refunds: t.refunds, fees: t.fees, fx: t.fx, adjustments: t.adjustments, carried_in: carried, net: t.net + carried, entry_count: t.entry_count },
    payout: { status: 'paid', attempts: 1, bank_account_last4: input.last4 ?? '4242', reference: 'po_1', paid_at: input.createdAt },
    run_id: 'run-test',
    version: 1,
    created_at: input.createdAt,
    updated_at: input.createdAt,
  };
  await dynamo().send(new PutCommand({ TableName: table, Item: { ...settlementKey(s.id), type: 'settlement', ...settlementListKey(s), ...s, bank_account_ciphertext: new Uint8Array([1, 2, 3]) } }));
  return s;
}

/** The settlement's numbers by the model's definitions (docs/settlement.md), apart from the report's own tally. */
export function oracleTotals(entries: Array<Pick<EntryItem, 'kind' | 'entry_amount'>>) {
  const of = (kind: string) => entries.filter((e) => e.kind === kind);
  const magnitude = (kind: string) => of(kind).reduce((a, e) => a + Math.abs(e.entry_amount), 0);
  const t = {
    gross: magnitude('capture') + magnitude('conversion'),
    refunds: magnitude('refund'),
    fees: magnitude('fee'),
    fx: magnitude('fx_spread'),
    adjustments: of('adjustment').reduce((a, e) => a + e.entry_amount, 0),
    entry_count: entries.length,
    net: 0,
  };
  t.net = t.gross - t.refunds - t.fees - t.fx + t.adjustments;
  return t;
}
