import { TransactionCanceledException, ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { dynamo } from '../commons/clients';
import { ConflictError } from '../commons/errors';
import { sourcesOf, transitionConflict, type Order, type OrderStatus } from './order';

/**
 * Orders in the single table (docs/architecture.md):
 *   order        pk ORDER#<id>                              sk ORDER
 *   order number pk MERCHANT#<merchant>#ORDERNO#<no>        sk ORDERNO   (uniqueness, points at the order)
 *   gsi1         MERCHANT#<merchant> / ORDER#<created_at>#<id>           (list, newest first)
 *   gsi2         EXPIRY#<shard> / <expires_at>#<id>, only while payable   (expiry sweep)
 * Every read takes the merchant id and never returns another merchant's order.
 */
export const EXPIRY_SHARDS = 4;

const orderKey = (id: string) => ({ pk: `ORDER#${id}`, sk: 'ORDER' });
const orderNoKey = (merchantId: string, no: string) => ({ pk: `MERCHANT#${merchantId}#ORDERNO#${no}`, sk: 'ORDERNO' });
const listKey = (order: Pick<Order, 'merchant_id' | 'created_at' | 'id'>) => ({
  gsi1pk: `MERCHANT#${order.merchant_id}`,
  gsi1sk: `ORDER#${order.created_at}#${order.id}`,
});
const expiryKey = (order: Pick<Order, 'expires_at' | 'id'>) => ({
  gsi2pk: `EXPIRY#${expiryShard(order.id)}`,
  gsi2sk: `${order.expires_at}#${order.id}`,
});

export function expiryShard(id: string): number {
  return id.charCodeAt(id.length - 1) % EXPIRY_SHARDS;
}

export class OrderRepository {
  constructor(private readonly table: string) {}

  /** Writes the order and claims its merchant_order_no in one transaction: both or neither. */
  async insert(order: Order): Promise<void> {
    try {
      await dynamo().send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.table,
                Item: { ...orderKey(order.id), type: 'order', ...listKey(order), ...expiryKey(order), ...order },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            {
              Put: {
                TableName: this.table,
                Item: { ...orderNoKey(order.merchant_id, order.merchant_order_no), type: 'order_no', order_id: order.id },
                ConditionExpression: 'attribute_not_exists(pk)',
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              },
            },
          ],
        }),
      );
    } catch (error) {
      const existing = error instanceof TransactionCanceledException ? error.CancellationReasons?.[1] : undefined;
      if (existing?.Code !== 'ConditionalCheckFailed' || !existing.Item) throw error;
      const { order_id } = unmarshall(existing.Item) as { order_id: string };
      throw new ConflictError(
        'duplicate_merchant_order_no',
        `merchant_order_no '${order.merchant_order_no}' is already used by order '${order_id}'. Retrieve that order, or use a new merchant_order_no for a new order.`,
        { param: 'merchant_order_no', extra: { order_id } },
      );
    }
  }

  async get(merchantId: string, id: string): Promise<Order | undefined> {
    const { Item } = await dynamo().send(new GetCommand({ TableName: this.table, Key: orderKey(id), ConsistentRead: true }));
    return Item && Item.merchant_id === merchantId ? fromItem(Item) : undefined;
  }

  async findByMerchantOrderNo(merchantId: string, no: string): Promise<Order | undefined> {
    const { Item } = await dynamo().send(new GetCommand({ TableName: this.table, Key: orderNoKey(merchantId, no) }));
    return Item ? this.get(merchantId, Item.order_id as string) : undefined;
  }

  /**
   * Newest first on gsi1, optionally after a cursor order, within [createdGte, createdLt), keeping
   * orders whose effective status matches. Reads pages until it has `limit + 1` matches, so
   * `has_more` is exact even when the status filter drops items.
   */
  async list(
    merchantId: string,
    opts: { limit: number; after?: Order; createdGte?: Date; createdLt?: Date; status?: OrderStatus; now: Date },
  ): Promise<{ orders: Order[]; hasMore: boolean }> {
    const lower = `ORDER#${opts.createdGte?.toISOString() ?? ''}`;
    const upper = opts.createdLt ? `ORDER#${opts.createdLt.toISOString()}` : 'ORDER$';
    const filter = statusFilter(opts.status, opts.now);
    const orders: Order[] = [];
    let startKey: Record<string, unknown> | undefined = opts.after
      ? { ...orderKey(opts.after.id), ...listKey(opts.after) }
      : undefined;
    do {
      const page = await dynamo().send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :pk AND gsi1sk BETWEEN :lower AND :upper',
          ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}`, ':lower': lower, ':upper': upper, ...filter?.values },
          ExpressionAttributeNames: filter?.names,
          FilterExpression: filter?.expression,
          ScanIndexForward: false,
          ExclusiveStartKey: startKey,
          Limit: opts.limit + 1,
        }),
      );
      orders.push(...(page.Items ?? []).map(fromItem));
      startKey = page.LastEvaluatedKey;
    } while (startKey && orders.length <= opts.limit);
    return { orders: orders.slice(0, opts.limit), hasMore: orders.length > opts.limit };
  }

  /**
   * Moves an order to `to` only if its current status allows it (order.ts), in one conditional
   * write. Returns the order as stored before and after; the caller decides what a refused
   * transition means.
   */
  async transition(
    merchantId: string,
    id: string,
    to: OrderStatus,
    now: Date,
    set: Partial<Order> = {},
    /** Narrows the allowed current statuses further, for writers that act on a snapshot. */
    onlyFrom?: OrderStatus[],
  ): Promise<{ ok: true; order: Order } | { ok: false; current?: Order }> {
    const from = sourcesOf(to).filter((status) => !onlyFrom || onlyFrom.includes(status));
    const updates: Record<string, unknown> = { ...set, status: to, updated_at: now.toISOString() };
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':merchant': merchantId };
    const assignments = Object.entries(updates).map(([field, value], i) => {
      names[`#f${i}`] = field;
      values[`:v${i}`] = value;
      return `#f${i} = :v${i}`;
    });
    from.forEach((status, i) => (values[`:from${i}`] = status));
    // Leaving requires_payment also leaves the expiry index, so the sweep never sees it again.
    const remove = to === 'requires_payment' ? '' : ' REMOVE gsi2pk, gsi2sk';
    try {
      const { Attributes } = await dynamo().send(
        new UpdateCommand({
          TableName: this.table,
          Key: orderKey(id),
          UpdateExpression: `SET ${assignments.join(', ')}${remove}`,
          ConditionExpression: `merchant_id = :merchant AND #status IN (${from.map((_, i) => `:from${i}`).join(', ')})`,
          ExpressionAttributeNames: { ...names, '#status': 'status' },
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { ok: true, order: fromItem(Attributes!) };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const old = error.Item ? fromItem(unmarshall(error.Item)) : undefined;
      return { ok: false, current: old && old.merchant_id === merchantId ? old : undefined };
    }
  }

  /** Payable orders whose expiry has passed, from one shard of the sparse expiry index. */
  async dueForExpiry(shard: number, now: Date, limit: number): Promise<Array<Pick<Order, 'id' | 'merchant_id' | 'expires_at'>>> {
    const { Items = [] } = await dynamo().send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'gsi2',
        KeyConditionExpression: 'gsi2pk = :pk AND gsi2sk < :upper',
        ExpressionAttributeValues: { ':pk': `EXPIRY#${shard}`, ':upper': `${now.toISOString()}$` },
        ProjectionExpression: 'id, merchant_id, expires_at',
        Limit: limit,
      }),
    );
    return Items as Array<Pick<Order, 'id' | 'merchant_id' | 'expires_at'>>;
  }
}

function statusFilter(status: OrderStatus | undefined, now: Date) {
  if (!status) return undefined;
  const names = { '#status': 'status' };
  const nowIso = now.toISOString();
  // Expired-but-not-yet-swept orders count as closed (order.ts `effective`).
  if (status === 'requires_payment') {
    return { names, values: { ':s': status, ':now': nowIso }, expression: '#status = :s AND expires_at > :now' };
  }
  if (status === 'closed') {
    return {
      names,
      values: { ':s': status, ':rp': 'requires_payment', ':now': nowIso },
      expression: '#status = :s OR (#status = :rp AND expires_at <= :now)',
    };
  }
  return { names, values: { ':s': status }, expression: '#status = :s' };
}

function fromItem(item: Record<string, unknown>): Order {
  const { pk, sk, type, gsi1pk, gsi1sk, gsi2pk, gsi2sk, ...order } = item;
  return order as unknown as Order;
}
