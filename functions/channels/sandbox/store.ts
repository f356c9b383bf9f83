import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { GetCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { dynamo } from '../../commons/clients';
import { required } from '../../commons/config';
import type { SubCode, TradeStatus } from './transformers';

/**
 * The sandbox PSP's own ledger of trades ("bank side"), in the main table:
 *   trade        pk SANDBOX#<out_trade_no>   sk TRADE     the record (amounts in minor units)
 *   trade number pk SANDBOXREF#<trade_no>    sk TRADENO   → out_trade_no, for capture / void / refund by trade_no
 * Both are written in one transaction with attribute_not_exists, so one out_trade_no gets one trade, ever.
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

/** Sandbox trades outlive the platform's refund window (about a year), then DynamoDB TTL removes them. */
const RETENTION_SECONDS = 400 * 24 * 3600;

/** What the bank needs of its store (an in-memory one stands in for unit tests). */
export type TradeRecords = Pick<TradeStore, 'create' | 'get' | 'getByTradeNo' | 'transition' | 'addRefund'>;

const tradeKey = (outTradeNo: string) => ({ pk: `SANDBOX#${outTradeNo}`, sk: 'TRADE' });
const tradeNoKey = (tradeNo: string) => ({ pk: `SANDBOXREF#${tradeNo}`, sk: 'TRADENO' });

export class TradeStore {
  constructor(private readonly table: () => string = () => required('TABLE_NAME')) {}

  /** Creates the trade, or returns the one that already has this out_trade_no. */
  async create(trade: TradeRecord): Promise<{ created: true } | { created: false; existing: TradeRecord }> {
    const ttl = Math.floor(Date.parse(trade.gmt_create) / 1000) + RETENTION_SECONDS;
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
    return this.update(outTradeNo, {
      UpdateExpression: `SET ${[...assignments, 'seq = seq + :one', 'gmt_modified = :now'].join(', ')}`,
      ConditionExpression: `#status IN (${from.map((_, i) => `:from${i}`).join(', ')})`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
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
    return this.update(outTradeNo, {
      UpdateExpression:
        'SET refunds.#rid = :refund, refundable_amount = refundable_amount - :amt, refunded_amount = refunded_amount + :amt, seq = seq + :one, gmt_modified = :now',
      ConditionExpression: '#status = :success AND refundable_amount >= :amt AND attribute_not_exists(refunds.#rid)',
      ExpressionAttributeNames: { '#status': 'trade_status', '#rid': refundId },
      ExpressionAttributeValues: { ':refund': refund, ':amt': refund.amount, ':success': 'TRADE_SUCCESS', ':one': 1, ':now': now.toISOString() },
    });
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
