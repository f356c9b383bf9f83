import * as z from 'zod';
import { currency as currencyOf } from '../commons/money';
import { InvalidRequestError, NotFoundError } from '../commons/errors';
import type { ApiTextResult } from '../http/api';
import { parseInput } from '../http/validation';
import { pageLimit as limit } from '../orders/schemas';
import { buildBill } from './bills';
import { businessTimeZone } from './calendar';
import { contentDigest, readStoredPart, storedReport, walkReport, type StoredReport } from './report';
import { SETTLEMENT_ID, SETTLEMENT_STATUSES, type Settlement } from './settlement';
import { SettlementStore, type EntryItem } from './store';
import { settlementToApi } from './subject';

/** Who asks: the merchant of the API key (every read is scoped by it). */
export interface SettlementCaller {
  merchantId: string;
}

export const settlementIdSchema = z.string().regex(SETTLEMENT_ID, 'Settlement ids look like "stl_" followed by 24 letters a-z and digits 2-7.');

export const listSettlementsSchema = z
  .object({
    limit,
    starting_after: settlementIdSchema.optional(),
    currency: z
      .string()
      .refine((c) => currencyOf(c) !== undefined, 'Send an uppercase ISO 4217 code, e.g. USD.')
      .optional(),
    status: z.enum(SETTLEMENT_STATUSES, { error: `Use one of: ${SETTLEMENT_STATUSES.join(', ')}.` }).optional(),
  })
  .strict();

export const listTransactionsSchema = z
  .object({
    limit,
    starting_after: z.string().regex(/^tr_[A-Za-z0-9_-]{1,200}$/, 'Send the id of a transaction from the previous page, e.g. "tr_...".').optional(),
  })
  .strict();

export const reportQuerySchema = z
  .object({
    part: z
      .string()
      .regex(/^[1-9]\d{0,5}$/, 'Send a part number from 1 to the manifest\'s part count (GET the report without part for the manifest).')
      .transform(Number)
      .optional(),
  })
  .strict();

/**
 * The settlement as the API shows it: the events' object (subject.ts settlementToApi: numbers, payout, the bank
 * account as its last 4 digits only), plus `bank_account_last4` at the top and the report's manifest once written.
 */
export function settlementObject(s: Settlement) {
  const report = storedReport(s);
  return {
    ...settlementToApi(s),
    bank_account_last4: s.payout?.bank_account_last4 ?? null,
    report: report ? manifestOf(s, report) : null,
  };
}

/** One entry of a settlement (Stripe's balance transaction): `amount` is signed, + credits the merchant. */
export function transactionObject(e: EntryItem) {
  return {
    object: 'settlement_transaction' as const,
    id: e.id,
    type: e.kind,
    order_id: e.order_id ?? null,
    refund_id: e.refund_id ?? null,
    amount: e.entry_amount,
    currency: e.currency,
    fee: e.kind === 'fee' || e.kind === 'fx_spread' ? -e.entry_amount : 0,
    fx: e.fx
      ? { source_currency: e.fx.source_currency, source_amount: e.fx.source_amount, base_rate: e.fx.base_rate, rate: e.fx.rate, markup_bps: e.fx.markup_bps, rate_effective_at: e.fx.rate_effective_at }
      : null,
    stream: e.entry_stream,
    created_at: e.created_at,
  };
}

export function manifestOf(s: Pick<Settlement, 'id'>, r: StoredReport) {
  const url = `/v1/settlements/${s.id}/report`;
  return {
    object: 'settlement_report' as const,
    settlement_id: s.id,
    lines: r.lines,
    bytes: r.bytes,
    sha256: r.sha256,
    content_digest: contentDigest(r.sha256),
    parts: r.parts.map((p) => ({ part: p.part, lines: p.lines, bytes: p.bytes, sha256: p.sha256, content_digest: contentDigest(p.sha256), url: `${url}?part=${p.part}` })),
  };
}

const csv = (text: string, sha256: string, filename: string, headers: Record<string, string> = {}): ApiTextResult => ({
  status: 200,
  text,
  contentType: 'text/csv; charset=utf-8',
  headers: { 'Content-Digest': contentDigest(sha256), 'Content-Disposition': `attachment; filename="${filename}"`, ...headers },
});

/** The settlements and bills API (docs/settlement.md § API). Thin handlers call one method each. */
export class SettlementApi {
  constructor(private readonly store = new SettlementStore()) {}

  async list(caller: SettlementCaller, query: unknown) {
    const input = parseInput(listSettlementsSchema, query);
    const after = input.starting_after ? await this.store.get(caller.merchantId, input.starting_after) : undefined;
    if (input.starting_after && !after) throw new NotFoundError('settlement', input.starting_after, 'starting_after');
    const page = await this.store.list(caller.merchantId, { limit: input.limit, after, currency: input.currency, status: input.status });
    return { object: 'list' as const, url: '/v1/settlements', has_more: page.hasMore, data: page.settlements.map(settlementObject) };
  }

  async get(caller: SettlementCaller, id: string) {
    return settlementObject(await this.load(caller, id));
  }

  async transactions(caller: SettlementCaller, id: string, query: unknown) {
    const s = await this.load(caller, id);
    const input = parseInput(listTransactionsSchema, query);
    const cursor = input.starting_after ? await this.store.entryOf(s, input.starting_after) : undefined;
    if (input.starting_after && !cursor) throw new NotFoundError(`transaction of settlement '${s.id}'`, input.starting_after, 'starting_after');
    const data: EntryItem[] = [];
    for await (const e of this.store.entries(s, cursor ? { after: cursor.gsi1sk } : undefined, input.limit + 1)) {
      data.push(e);
      if (data.length > input.limit) break;
    }
    return {
      object: 'list' as const,
      url: `/v1/settlements/${s.id}/transactions`,
      has_more: data.length > input.limit,
      data: data.slice(0, input.limit).map(transactionObject),
    };
  }

  /**
   * The report: the CSV when it is one part, else the manifest (JSON); `?part=N` is part N. Served from the
   * digests the Report step stored (each part re-read must hash to its stored digest); a settlement the step has
   * not reported on yet (its payout in flight) is read whole, once per request.
   */
  async report(caller: SettlementCaller, id: string, query: unknown): Promise<ApiTextResult | { status: number; body: unknown }> {
    const s = await this.load(caller, id);
    const { part } = parseInput(reportQuerySchema, query);
    const stored = storedReport(s);
    const walked = stored ? undefined : await walkReport(this.store, s, { keep: part ?? 1 });
    const report = stored ?? walked!.report;
    const wanted = part ?? (report.parts.length === 1 ? 1 : undefined);
    if (wanted === undefined) return { status: 200, body: manifestOf(s, report) };
    const p = report.parts[wanted - 1];
    if (!p) {
      throw new InvalidRequestError('parameter_invalid', `Invalid 'part': got ${wanted}, but the report of '${s.id}' has ${report.parts.length} part${report.parts.length === 1 ? '' : 's'}. Send 1 to ${report.parts.length}.`, {
        param: 'part',
      });
    }
    const text = stored ? await readStoredPart(this.store, s, p) : walked!.text!;
    const whole = report.parts.length === 1;
    return csv(text, p.sha256, whole ? `${s.id}.csv` : `${s.id}-part-${wanted}.csv`, { 'Payplane-Report-Part': `${wanted}/${report.parts.length}` });
  }

  async bill(caller: SettlementCaller, day: string, query: unknown) {
    const { part } = parseInput(reportQuerySchema, query);
    const bill = await buildBill(this.store, caller.merchantId, day, businessTimeZone());
    const wanted = part ?? (bill.parts.length === 1 ? 1 : undefined);
    if (wanted === undefined) {
      return {
        status: 200,
        body: {
          object: 'bill',
          date: bill.day,
          time_zone: bill.time_zone,
          lines: bill.lines,
          sha256: bill.sha256,
          content_digest: contentDigest(bill.sha256),
          parts: bill.parts.map(({ text, ...p }) => ({ ...p, content_digest: contentDigest(p.sha256), url: `/v1/bills/${bill.day}?part=${p.part}` })),
        },
      };
    }
    const p = bill.parts[wanted - 1];
    if (!p) throw new InvalidRequestError('parameter_invalid', `Invalid 'part': got ${wanted}, but the bill of ${bill.day} has ${bill.parts.length} part(s). Send 1 to ${bill.parts.length}.`, { param: 'part' });
    return csv(p.text, p.sha256, bill.parts.length === 1 ? `bill-${bill.day}.csv` : `bill-${bill.day}-part-${wanted}.csv`, { 'Payplane-Report-Part': `${wanted}/${bill.parts.length}` });
  }

  private async load(caller: SettlementCaller, id: string): Promise<Settlement> {
    const s = settlementIdSchema.safeParse(id).success ? await this.store.get(caller.merchantId, id) : undefined;
    if (!s) throw new NotFoundError('settlement', id);
    return s;
  }
}

let service: SettlementApi | undefined;

/** The service wired to this function's table, built once per cold start. */
export function settlements(): SettlementApi {
  service ??= new SettlementApi();
  return service;
}
