import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { dynamo } from '../../commons/clients';
import { required } from '../../commons/config';
import type { SubCode, TradeStatus } from './transformers';

/**
 * The sandbox PSP's own ledger of trades ("bank side"), in the main table:
 *   trade        pk SANDBOX#<out_trade_no>   sk TRADE     the record (amounts in minor units)
 *   trade number pk SANDBOXREF#<trade_no>    sk TRADENO   → out_trade_no, for capture / void / refund by trade_no
 *   statement    pk SANDBOXSTMT#<YYYY-MM-DD>  sk <time>#capture#<out_trade_no> | <time>#refund#<out_request_no>
 *                the PSP's daily statement of captures and refunds (UTC days, like Alipay's bill), one line written in
 *                the same transaction as the trade's capture or refund: the statement is the bank's own record, which
 *                the settlement Summary holds the ledger against (settlements/reconcile.ts)
 * Trade and trade number are written in one transaction with attribute_not_exists, so one out_trade_no gets one
 * trade, ever.
 * No card number or CVC is kept: only brand and last 4. Items carry `type: 'sandbox_trade' | 'sandbox_trade_no'`
 * so stream consumers of the main table can skip them.
 */
export interface StoredRefund {
  refund_no: string;
  amount: number;
  status: 'REFUND_SUCCESS';
  gmt_refund: string;
}

export interface TradeRecord {
  out_trade_no: string;
  trade_no: string;
  currency: string;
  total_amount: number;
  capture_mode: 'AUTO' | 'MANUAL';
  pay_channel: 'CARD' | 'WALLET';
  card_brand?: string;
  card_last4?: string;
  trade_status: TradeStatus;
  sub_code?: SubCode;
  sub_msg?: string;
  challenge_id?: string;
  /** WAIT_BANK only: what the bank will decide, and from when. */
  pending_result?: 'SUCCESS' | 'FAILURE';
  settle_at?: string;
  authorized_amount: number;
  captured_amount: number;
  /** captured − refunded, kept as its own attribute so a refund can be a single conditional write. */
  refundable_amount: number;
  refunded_amount: number;
  captured_by?: 'AUTO' | 'CAPTURE';
  /** By out_request_no (the platform's refundId). */
  refunds: Record<string, StoredRefund>;
  notify_url: string;
  return_url?: string;
  /** 1 at creation, +1 with every change: the `seq` of notifications. */
  seq: number;
  gmt_create: string;
  gmt_modified: string;
}

/** One line of the daily statement: a capture (by the platform's payment id) or a refund (by its refund id). */
export interface StatementLine {
  kind: 'capture' | 'refund';
  /** The platform's payment (attempt) id. */
  out_trade_no: string;
  /** Refunds: the platform's refund id, and the PSP's refund number. */
  out_request_no?: string;
  refund_no?: string;
  trade_no: string;
  amount: number;
  currency: string;
  at: string;
}

const statementLineItem = (line: StatementLine, ttl: number) => ({
  pk: `SANDBOXSTMT#${line.at.slice(0, 10)}`,
  sk: `${line.at}#${line.kind}#${line.kind === 'capture' ? line.out_trade_no : line.out_request_no}`,
  type: 'sandbox_statement_line',
  ttl,
  ...line,
});

/** Sandbox trades outlive the platform's refund window (about a year), then DynamoDB TTL removes them. */
export const SANDBOX_RETENTION_SECONDS = 400 * 24 * 3600;

/** What the bank needs of its store (an in-memory one stands in for unit tests). */
export type TradeRecords = Pick<TradeStore, 'create' | 'get' | 'getByTradeNo' | 'transition' | 'addRefund'>;

const ttlOf = (at: string) => Math.floor(Date.parse(at) / 1000) + SANDBOX_RETENTION_SECONDS;
const captureLine = (trade: Pick<TradeRecord, 'out_trade_no' | 'trade_no' | 'currency'>, amount: number, at: string): StatementLine => ({
  kind: 'capture',
  out_trade_no: trade.out_trade_no,
  trade_no: trade.trade_no,
  amount,
  currency: trade.currency,
  at,
});

const tradeKey = (outTradeNo: string) => ({ pk: `SANDBOX#${outTradeNo}`, sk: 'TRADE' });
const tradeNoKey = (tradeNo: string) => ({ pk: `SANDBOXREF#${tradeNo}`, sk: 'TRADENO' });

export class TradeStore {
  constructor(private readonly table: () => string = () => required('TABLE_NAME')) {}

  /** Creates the trade, or returns the one that already has this out_trade_no. */
  async create(trade: TradeRecord): Promise<{ created: true } | { created: false; existing: TradeRecord }> {
    const ttl = Math.floor(Date.parse(trade.gmt_create) / 1000) + SANDBOX_RETENTION_SECONDS;
    for (let attempt = 0; ; attempt++) {
      try {
        await dynamo().send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Put: {
                  TableName: this.table(),
                  Item: { ...tradeKey(trade.out_trade_no), type: 'sandbox_trade', ttl, ...trade },
                  ConditionExpression: 'attribute_not_exists(pk)',
                },
              },
              {
                Put: {
                  TableName: this.table(),
                  Item: { ...tradeNoKey(trade.trade_no), type: 'sandbox_trade_no', ttl, out_trade_no: trade.out_trade_no },
                  ConditionExpression: 'attribute_not_exists(pk)',
                },
              },
              ...(trade.trade_status === 'TRADE_SUCCESS'
                ? [{ Put: { TableName: this.table(), Item: statementLineItem(captureLine(trade, trade.captured_amount, trade.gmt_create), ttl), ConditionExpression: 'attribute_not_exists(pk)' } }]
                : []),
            ],
          }),
        );
        return { created: true };
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        // Lost to a concurrent create of the same out_trade_no (ConditionalCheckFailed, or TransactionConflict
        // while it was in flight): the winner's trade is the answer.
        const existing = await this.get(trade.out_trade_no);
        if (existing) return { created: false, existing };
        if (attempt >= 3) throw error;
      }
    }
  }

  async get(outTradeNo: string): Promise<TradeRecord | undefined> {
    const { Item } = await dynamo().send(new GetCommand({ TableName: this.table(), Key: tradeKey(outTradeNo), ConsistentRead: true }));
    return Item ? fromItem(Item) : undefined;
  }

  async getByTradeNo(tradeNo: string): Promise<TradeRecord | undefined> {
    const { Item } = await dynamo().send(new GetCommand({ TableName: this.table(), Key: tradeNoKey(tradeNo), ConsistentRead: true }));
    return Item ? this.get(Item.out_trade_no as string) : undefined;
  }

  /**
   * Sets `set` and bumps seq, only while the trade is in one of `from`. Returns the trade after the
   * write, or `{ current }` (the trade as it is) when its status had moved on.
   */
  async transition(
    outTradeNo: string,
    from: TradeStatus[],
    set: Partial<TradeRecord>,
    now: Date,
  ): Promise<{ ok: true; trade: TradeRecord } | { ok: false; current?: TradeRecord }> {
    const names: Record<string, string> = { '#status': 'trade_status' };
    const values: Record<string, unknown> = { ':one': 1, ':now': now.toISOString() };
    const assignments = Object.entries(set).map(([field, value], i) => {
      names[`#f${i}`] = field;
      values[`:v${i}`] = value;
      return `#f${i} = :v${i}`;
    });
    from.forEach((status, i) => (values[`:from${i}`] = status));
    const expression = {
      UpdateExpression: `SET ${[...assignments, 'seq = seq + :one', 'gmt_modified = :now'].join(', ')}`,
      ConditionExpression: `#status IN (${from.map((_, i) => `:from${i}`).join(', ')})`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    };
    // A capture (TRADE_SUCCESS is never among `from`, so this happens once per trade) writes its statement line with it.
    if (set.trade_status !== 'TRADE_SUCCESS') return this.update(outTradeNo, expression);
    const trade = await this.get(outTradeNo);
    if (!trade) return { ok: false };
    return this.updateWithLine(outTradeNo, expression, captureLine(trade, set.captured_amount ?? trade.captured_amount, now.toISOString()));
  }

  /**
   * Records a refund in one conditional write: only on a TRADE_SUCCESS trade, only if `amount` fits in
   * what is left to refund, and only once per refund id. Concurrent refunds can never exceed the capture.
   */
  async addRefund(
    outTradeNo: string,
    refundId: string,
    refund: StoredRefund,
    now: Date,
  ): Promise<{ ok: true; trade: TradeRecord } | { ok: false; current?: TradeRecord }> {
    const trade = await this.get(outTradeNo);
    if (!trade) return { ok: false };
    const line: StatementLine = {
      kind: 'refund',
      out_trade_no: outTradeNo,
      out_request_no: refundId,
      refund_no: refund.refund_no,
      trade_no: trade.trade_no,
      amount: refund.amount,
      currency: trade.currency,
      at: refund.gmt_refund,
    };
    return this.updateWithLine(
      outTradeNo,
      {
        UpdateExpression:
          'SET refunds.#rid = :refund, refundable_amount = refundable_amount - :amt, refunded_amount = refunded_amount + :amt, seq = seq + :one, gmt_modified = :now',
        ConditionExpression: '#status = :success AND refundable_amount >= :amt AND attribute_not_exists(refunds.#rid)',
        ExpressionAttributeNames: { '#status': 'trade_status', '#rid': refundId },
        ExpressionAttributeValues: { ':refund': refund, ':amt': refund.amount, ':success': 'TRADE_SUCCESS', ':one': 1, ':now': now.toISOString() },
      },
      line,
    );
  }

  /** The statement of a UTC day (YYYY-MM-DD): its captures and refunds, in time order. */
  async statement(day: string): Promise<StatementLine[]> {
    const lines: StatementLine[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await dynamo().send(
        new QueryCommand({ TableName: this.table(), KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `SANDBOXSTMT#${day}` }, ExclusiveStartKey: start, ConsistentRead: true }),
      );
      for (const item of page.Items ?? []) {
        const { pk, sk, type, ttl, ...line } = item;
        lines.push(line as StatementLine);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return lines;
  }

  /** The trade's conditional Update and its statement line, in one transaction; the trade after, or as it is. */
  private async updateWithLine(
    outTradeNo: string,
    expression: Pick<ConstructorParameters<typeof UpdateCommand>[0], 'UpdateExpression' | 'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'>,
    line: StatementLine,
  ): Promise<{ ok: true; trade: TradeRecord } | { ok: false; current?: TradeRecord }> {
    try {
      await dynamo().send(
        new TransactWriteCommand({
          TransactItems: [
            { Update: { TableName: this.table(), Key: tradeKey(outTradeNo), ...expression, ConditionExpression: `attribute_exists(pk) AND (${expression.ConditionExpression})` } as never },
            { Put: { TableName: this.table(), Item: statementLineItem(line, ttlOf(line.at)), ConditionExpression: 'attribute_not_exists(pk)' } },
          ],
        }),
      );
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      // Moved on (or a concurrent writer holds it): the trade as it is now answers.
      return { ok: false, current: await this.get(outTradeNo) };
    }
    const trade = await this.get(outTradeNo);
    return trade ? { ok: true, trade } : { ok: false };
  }

  private async update(
    outTradeNo: string,
    expression: Pick<
      ConstructorParameters<typeof UpdateCommand>[0],
      'UpdateExpression' | 'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'
    >,
  ): Promise<{ ok: true; trade: TradeRecord } | { ok: false; current?: TradeRecord }> {
    try {
      const { Attributes } = await dynamo().send(
        new UpdateCommand({
          TableName: this.table(),
          Key: tradeKey(outTradeNo),
          ...expression,
          ConditionExpression: `attribute_exists(pk) AND (${expression.ConditionExpression})`,
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { ok: true, trade: fromItem(Attributes!) };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      return { ok: false, current: error.Item ? fromItem(unmarshall(error.Item)) : undefined };
    }
  }
}

function fromItem(item: Record<string, unknown>): TradeRecord {
  const { pk, sk, type, ttl, ...trade } = item;
  return trade as unknown as TradeRecord;
}
