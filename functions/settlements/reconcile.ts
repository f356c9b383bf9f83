import { BatchGetCommand, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { TradeStore, type StatementLine } from '../channels/sandbox/store';
import type { PayoutChannel, PayoutStatementLine } from '../channels/payouts/channel';
import { dynamo } from '../commons/clients';
import { InternalError } from '../commons/errors';
import { logger } from '../commons/logger';
import { ALARM_METRICS, countAlarmMetric } from '../commons/metrics';
import { parseAccount } from '../ledger/accounts';
import { indexedAccounts } from '../ledger/balance';
import { entrySortKey, payoutTransferIds, transferKey, type EntryStream } from '../ledger/transfers';
import { classify, entriesOf, zeroTotals, type EntryTotals } from './entries';
import { NEGATIVE_BALANCE, settleHorizonMs, type SettlementDeps } from './settle';
import type { Settlement, SettlementStatus } from './settlement';
import { settlementFromItem } from './subject';

/**
 * The run's Summary (docs/settlement.md § Reconciliation). Every check reads something the run did not compute:
 *   internal   each settlement's totals against its windows' entries re-read from the ledger; net against its parts;
 *              per currency Σnet + Σfees + Σfx = Σgross − Σrefunds + Σadjustments + Σcarried_in over those re-read
 *              totals; a paid settlement's posted payout (and a failed one's void) against its net;
 *   external   the ledger's captures and refunds of the statement day against the sandbox channel's statement, line
 *              by line by payment id / refund id (a line missing on either side, an amount or a currency that
 *              differs; a counterpart on the day before or after is a timing difference, not a break), and the
 *              run's paid settlements against the payout rail's statement.
 * Any break throws ReconciliationError, whose message names every break: the execution fails, and its alarm fires.
 * The negative-balance alert rides along: merchants negative for longer than NEGATIVE_BALANCE_ALERT_DAYS.
 */
export class ReconciliationError extends InternalError {}

export const DEFAULT_NEGATIVE_BALANCE_ALERT_DAYS = 7;
/** What of a break list fits a Step Functions Cause (32 KB) and a human's attention. */
const MAX_MESSAGE = 8_000;
const MAX_LISTED = 50;
const DAY_MS = 86_400_000;

export interface RunSummary {
  run_id: string;
  cutoff: string;
  settlements: number;
  by_status: Partial<Record<SettlementStatus, number>>;
  /** Per currency, minor units: the run's totals, and its net by outcome. */
  currencies: Record<string, EntryTotals & { carried_in: number; net: number; paid: number; failed: number; carried_forward: number; in_payout: number }>;
  failures: Array<{ settlement_id: string; merchant_id: string; currency: string; code?: string }>;
  checked: { entries: number; statement_days: string[]; statement_lines: number; payout_lines: number; timing_differences: number };
  negative_balances: { count: number; alert_days: number; merchants: Array<{ merchant_id: string; currency: string; since: string }> };
}

export interface SummaryDeps extends SettlementDeps {
  channel: PayoutChannel;
  /** The payment channel's statement of a UTC day. @default the sandbox TradeStore's */
  paymentStatement?: (day: string) => Promise<StatementLine[]>;
}

export async function summarize(i: { cutoff: string; run_id: string; days?: string[] }, deps: SummaryDeps): Promise<RunSummary> {
  const now = deps.now();
  const settlements = await runSettlements(deps.table, i.run_id);
  const breaks: string[] = [];
  const summary: RunSummary = {
    run_id: i.run_id,
    cutoff: i.cutoff,
    settlements: settlements.length,
    by_status: {},
    currencies: {},
    failures: [],
    checked: { entries: 0, statement_days: [], statement_lines: 0, payout_lines: 0, timing_differences: 0 },
    negative_balances: { count: 0, alert_days: alertDays(), merchants: [] },
  };

  // ---- internal
  for (const s of settlements) {
    summary.by_status[s.status] = (summary.by_status[s.status] ?? 0) + 1;
    if (s.status === 'failed' && summary.failures.length < MAX_LISTED) summary.failures.push({ settlement_id: s.id, merchant_id: s.merchant_id, currency: s.currency, code: s.payout?.failure_code });
    const reread = zeroTotals();
    for (const stream of ['delayed', 'immediate'] as EntryStream[]) {
      for await (const e of entriesOf({ table: deps.table, merchantId: s.merchant_id, currency: s.currency }, stream, s.windows[stream])) classify(reread, e.kind as string, e.entry_amount as number);
    }
    summary.checked.entries += reread.entry_count;
    for (const field of ['gross', 'refunds', 'fees', 'fx', 'adjustments', 'entry_count'] as const) {
      if (reread[field] !== s.totals[field]) breaks.push(`settlement ${s.id} (${s.merchant_id} ${s.currency}): ${field} stored ${s.totals[field]}, its entries sum to ${reread[field]}`);
    }
    const net = reread.gross - reread.refunds - reread.fees - reread.fx + reread.adjustments + s.totals.carried_in;
    if (net !== s.totals.net) breaks.push(`settlement ${s.id} (${s.merchant_id} ${s.currency}): net stored ${s.totals.net}, its entries and carry make ${net}`);
    const c = (summary.currencies[s.currency] ??= { ...zeroTotals(), carried_in: 0, net: 0, paid: 0, failed: 0, carried_forward: 0, in_payout: 0 });
    // The run's sums are of the stored totals: what was paid must add up, whatever the entries say.
    for (const field of ['gross', 'refunds', 'fees', 'fx', 'adjustments', 'entry_count'] as const) c[field] += s.totals[field];
    c.carried_in += s.totals.carried_in;
    c.net += s.totals.net;
    c[s.status] += s.totals.net;
    breaks.push(...(await payoutBreaks(deps.table, s)));
  }
  for (const [currency, c] of Object.entries(summary.currencies)) {
    const left = c.net + c.fees + c.fx;
    const right = c.gross - c.refunds + c.adjustments + c.carried_in;
    if (left !== right) breaks.push(`${currency}: Σnet + Σfees + Σfx = ${left}, but Σgross − Σrefunds + Σadjustments + Σcarried_in = ${right}`);
  }

  // ---- external: the payment channel's statement
  const merchants = new Set(settlements.map((s) => s.merchant_id));
  const days = i.days ?? [new Date(Date.parse(i.cutoff) - 1).toISOString().slice(0, 10)];
  summary.checked.statement_days = days;
  const horizon = new Date(now.getTime() - (deps.horizonMs ?? settleHorizonMs())).toISOString();
  for (const day of days) {
    const r = await statementBreaks(deps, merchants, day, horizon);
    breaks.push(...r.breaks);
    summary.checked.statement_lines += r.lines;
    summary.checked.timing_differences += r.timing;
  }

  // ---- external: the payout rail's statement
  const r = await payoutStatementBreaks(deps.channel, settlements, now);
  breaks.push(...r.breaks);
  summary.checked.payout_lines = r.lines;

  // ---- negative balances
  summary.negative_balances = await negativeBalances(deps.table, now);

  logger.info('settlement run summary', { summary, breaks: breaks.length });
  if (breaks.length) throw new ReconciliationError('reconciliation_break', breakMessage(i.run_id, breaks));
  return summary;
}

function breakMessage(runId: string, breaks: string[]): string {
  let message = `Run ${runId}: ${breaks.length} reconciliation break${breaks.length === 1 ? '' : 's'}: `;
  for (const [n, b] of breaks.entries()) {
    const more = `; and ${breaks.length - n} more (the run's log lists all)`;
    if (message.length + b.length + 2 > MAX_MESSAGE - more.length) return message + more;
    message += (n ? '; ' : '') + b;
  }
  return message;
}

const alertDays = (env: NodeJS.ProcessEnv = process.env) => {
  const n = Number(env.NEGATIVE_BALANCE_ALERT_DAYS ?? DEFAULT_NEGATIVE_BALANCE_ALERT_DAYS);
  return Number.isInteger(n) && n >= 0 ? n : DEFAULT_NEGATIVE_BALANCE_ALERT_DAYS;
};

/** The run's settlements: gsi2 `RUN#<run_id>` names them (the index projects only ids), then each is read. */
export async function runSettlements(table: string, runId: string): Promise<Settlement[]> {
  const ids: string[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new QueryCommand({ TableName: table, IndexName: 'gsi2', KeyConditionExpression: 'gsi2pk = :pk', ExpressionAttributeValues: { ':pk': `RUN#${runId}` }, ExclusiveStartKey: start }),
    );
    for (const item of page.Items ?? []) if (item.type === 'settlement') ids.push(item.id as string);
    start = page.LastEvaluatedKey;
  } while (start);
  const out: Settlement[] = [];
  for (let k = 0; k < ids.length; k += 100) {
    let keys = ids.slice(k, k + 100).map((id) => ({ pk: `SETTLEMENT#${id}`, sk: 'SETTLEMENT' }));
    while (keys.length) {
      const got = await dynamo().send(new BatchGetCommand({ RequestItems: { [table]: { Keys: keys, ConsistentRead: true } } }));
      for (const item of got.Responses?.[table] ?? []) out.push(settlementFromItem(item));
      keys = (got.UnprocessedKeys?.[table]?.Keys ?? []) as typeof keys;
    }
  }
  return out.sort((a, b) => (a.merchant_id + a.currency < b.merchant_id + b.currency ? -1 : 1));
}

/** A resolved settlement's reserve: posted for its net when paid, voided when failed, pending while in payout. */
async function payoutBreaks(table: string, s: Settlement): Promise<string[]> {
  if (s.status === 'carried_forward' || (s.status === 'failed' && s.payout?.failure_code === 'balance_insufficient' && s.payout.attempts === 0)) return [];
  const get = async (id: string) => (await dynamo().send(new GetCommand({ TableName: table, Key: transferKey(id), ConsistentRead: true }))).Item;
  const reserve = await get(payoutTransferIds.reserve(s.id));
  const name = `settlement ${s.id} (${s.merchant_id} ${s.currency}, ${s.status})`;
  if (!reserve) return [`${name}: no payout reserve in the ledger`];
  if (reserve.amount !== s.totals.net) return [`${name}: reserve of ${reserve.amount}, net ${s.totals.net}`];
  if (s.status === 'in_payout') return [`${name}: still in payout when the run ended (its Payout and Compensate did not resolve it)`];
  const resolved = await get(s.status === 'paid' ? payoutTransferIds.post(s.id) : payoutTransferIds.void(s.id));
  if (!resolved) return [`${name}: its reserve was not ${s.status === 'paid' ? 'posted' : 'voided'} in the ledger`];
  if (s.status === 'paid' && resolved.amount !== s.totals.net) return [`${name}: payout posted ${resolved.amount}, net ${s.totals.net}`];
  return [];
}

interface LedgerLine {
  key: string;
  merchant_id: string;
  amount: number;
  currency: string;
  at: string;
}

/** The channel-facing captures and refunds (the transfers that touch the channel's receivable) of a merchant on a UTC day. */
async function ledgerLines(table: string, merchantId: string, day: string): Promise<LedgerLine[]> {
  const start = `${day}T00:00:00.000Z`;
  const end = new Date(Date.parse(start) + DAY_MS).toISOString();
  const currencies = await merchantCurrencies(table, merchantId);
  const ranges: Array<[string, string]> = [[`TRANSFER#${start}`, `TRANSFER#${end}`]]; // not entries: e.g. the capture of a converted order
  for (const c of currencies) for (const stream of ['delayed', 'immediate'] as const) ranges.push([entrySortKey(c, stream, start), entrySortKey(c, stream, end)]);
  const lines: LedgerLine[] = [];
  for (const [from, to] of ranges) {
    let page: Record<string, unknown> | undefined;
    do {
      const out = await dynamo().send(
        new QueryCommand({
          TableName: table,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to',
          FilterExpression: '#kind IN (:capture, :refund)',
          ExpressionAttributeNames: { '#kind': 'kind' },
          ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}`, ':from': from, ':to': to, ':capture': 'capture', ':refund': 'refund' },
          ExclusiveStartKey: page,
        }),
      );
      for (const t of out.Items ?? []) {
        const channelSide = t.kind === 'capture' ? t.debit : t.credit;
        if (parseAccount(channelSide as string).kind !== 'receivable') continue;
        const id = t.kind === 'capture' ? (t.payment_id as string | undefined) ?? `order ${t.order_id as string} (no payment_id)` : (t.refund_id as string);
        lines.push({ key: `${t.kind}:${id}`, merchant_id: merchantId, amount: t.amount as number, currency: t.currency as string, at: t.created_at as string });
      }
      page = out.LastEvaluatedKey;
    } while (page);
  }
  return lines;
}

async function merchantCurrencies(table: string, merchantId: string): Promise<string[]> {
  return (await indexedAccounts({ table, merchantId })).map((a) => a.currency);
}

/**
 * The statement's lines of a day that belong to `merchants`, by the platform's own records of the payment and the
 * refund (a line the platform has no record of is another system's trade on the shared sandbox: skipped, counted).
 */
async function attributedStatement(deps: SummaryDeps, merchants: Set<string>, day: string): Promise<Array<StatementLine & { key: string; merchant_id: string }>> {
  const lines = await (deps.paymentStatement ?? ((d: string) => new TradeStore(() => deps.table).statement(d)))(day);
  const keyOf = (l: StatementLine) => (l.kind === 'capture' ? { pk: `PAYMENT#${l.out_trade_no}`, sk: 'PAYMENT' } : { pk: `REFUND#${l.out_request_no}`, sk: 'REFUND' });
  const owner = new Map<string, string>();
  const wanted = [...new Map(lines.map((l) => [keyOf(l).pk, keyOf(l)])).values()];
  for (let k = 0; k < wanted.length; k += 100) {
    let keys = wanted.slice(k, k + 100);
    while (keys.length) {
      const got = await dynamo().send(new BatchGetCommand({ RequestItems: { [deps.table]: { Keys: keys, ProjectionExpression: 'pk, merchant_id' } } }));
      for (const item of got.Responses?.[deps.table] ?? []) owner.set(item.pk as string, item.merchant_id as string);
      keys = (got.UnprocessedKeys?.[deps.table]?.Keys ?? []) as typeof keys;
    }
  }
  return lines
    .map((l) => ({ ...l, key: `${l.kind}:${l.kind === 'capture' ? l.out_trade_no : l.out_request_no}`, merchant_id: owner.get(keyOf(l).pk) ?? '' }))
    .filter((l) => merchants.has(l.merchant_id));
}

async function statementBreaks(deps: SummaryDeps, merchants: Set<string>, day: string, horizon: string): Promise<{ breaks: string[]; lines: number; timing: number }> {
  if (merchants.size === 0) return { breaks: [], lines: 0, timing: 0 };
  const t = Date.parse(`${day}T00:00:00.000Z`);
  const neighbours = [new Date(t - DAY_MS), new Date(t + DAY_MS)].map((d) => d.toISOString().slice(0, 10));
  const ledger = new Map<string, LedgerLine & { day: string }>();
  const statement = new Map<string, StatementLine & { key: string; merchant_id: string; day: string }>();
  for (const d of [day, ...neighbours]) {
    for (const m of merchants) for (const l of await ledgerLines(deps.table, m, d)) ledger.set(l.key, { ...l, day: d });
    for (const l of await attributedStatement(deps, merchants, d)) statement.set(l.key, { ...l, day: d });
  }
  const breaks: string[] = [];
  let timing = 0;
  let lines = 0;
  for (const l of ledger.values()) {
    if (l.day !== day || l.at >= horizon) continue;
    lines++;
    const s = statement.get(l.key);
    if (!s) breaks.push(`statement ${day}: ${l.key} (${l.merchant_id}, ${l.amount} ${l.currency}) is in the ledger, missing from the channel's statement`);
    else if (s.day !== day) timing++;
    else if (s.currency !== l.currency) breaks.push(`statement ${day}: ${l.key} currency mismatch: ledger ${l.currency}, statement ${s.currency}`);
    else if (s.amount !== l.amount) breaks.push(`statement ${day}: ${l.key} amount mismatch: ledger ${l.amount} ${l.currency}, statement ${s.amount} ${s.currency}`);
  }
  for (const s of statement.values()) {
    if (s.day !== day || s.at >= horizon) continue;
    lines++;
    const l = ledger.get(s.key);
    if (!l) breaks.push(`statement ${day}: ${s.key} (${s.merchant_id}, ${s.amount} ${s.currency}) is on the channel's statement, missing from the ledger`);
    else if (l.day !== day) timing++;
  }
  return { breaks, lines, timing };
}

async function payoutStatementBreaks(channel: PayoutChannel, settlements: Settlement[], now: Date): Promise<{ breaks: string[]; lines: number }> {
  const ofRun = new Map(settlements.map((s) => [s.id, s]));
  const days = new Set([now.toISOString().slice(0, 10)]);
  for (const s of settlements) if (s.payout?.paid_at) days.add(s.payout.paid_at.slice(0, 10));
  const lines = new Map<string, PayoutStatementLine>();
  for (const day of days) for (const l of await channel.statement(day)) if (ofRun.has(l.settlement_id)) lines.set(l.settlement_id, l);
  const breaks: string[] = [];
  for (const s of settlements) {
    const l = lines.get(s.id);
    const name = `payout of settlement ${s.id} (${s.merchant_id})`;
    if (s.status === 'paid' && !l) breaks.push(`${name}: paid in the ledger (${s.totals.net} ${s.currency}), missing from the payout rail's statement`);
    else if (s.status !== 'paid' && l) breaks.push(`${name}: on the payout rail's statement (${l.amount} ${l.currency}, ${l.reference}) but ${s.status} in the ledger`);
    else if (l && l.currency !== s.currency) breaks.push(`${name}: currency mismatch: ledger ${s.currency}, rail ${l.currency}`);
    else if (l && l.amount !== s.totals.net) breaks.push(`${name}: amount mismatch: ledger ${s.totals.net} ${s.currency}, rail ${l.amount} ${l.currency}`);
  }
  return { breaks, lines: lines.size };
}

/** Cursors whose carry has stayed negative since before now − NEGATIVE_BALANCE_ALERT_DAYS: listed and counted. */
export async function negativeBalances(table: string, now: Date, days = alertDays()): Promise<RunSummary['negative_balances']> {
  const threshold = new Date(now.getTime() - days * DAY_MS).toISOString();
  const merchants: RunSummary['negative_balances']['merchants'] = [];
  let count = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new QueryCommand({
        TableName: table,
        IndexName: 'gsi2',
        KeyConditionExpression: 'gsi2pk = :pk AND gsi2sk < :t',
        ExpressionAttributeValues: { ':pk': NEGATIVE_BALANCE, ':t': threshold },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) {
      const [since, ...rest] = (item.gsi2sk as string).split('#');
      const currency = rest.pop()!;
      count++;
      countAlarmMetric(ALARM_METRICS.merchantNegativeBalance);
      if (merchants.length < MAX_LISTED) merchants.push({ merchant_id: rest.join('#'), currency, since: since! });
    }
    start = page.LastEvaluatedKey;
  } while (start);
  if (count) logger.warn('merchants with a negative balance past the alert threshold', { count, days, merchants });
  return { count, alert_days: days, merchants };
}
