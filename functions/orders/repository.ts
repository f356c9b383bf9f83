import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../commons/clients';
import type { Order, OrderStatus } from './order';

/**
 * Orders in the single table (docs/architecture.md):
 *   order        pk ORDER#<id>                              sk ORDER
 *   order number pk MERCHANT#<merchant>#ORDERNO#<no>        sk ORDERNO   (uniqueness, points at the order)
 *   gsi1         MERCHANT#<merchant> / ORDER#<created_at>#<id>           (list, newest first)
 *   gsi2         EXPIRY#<shard> / <expires_at>#<id>, only while payable   (expiry sweep)
 * Every read takes the merchant id and never returns another merchant's order. Writes go through the one writer
 * (changes/writer.ts), which builds these keys and index entries in each change's transaction.
 */
export const EXPIRY_SHARDS = 4;

export const orderKey = (id: string) => ({ pk: `ORDER#${id}`, sk: 'ORDER' });
export const orderNoKey = (merchantId: string, no: string) => ({ pk: `MERCHANT#${merchantId}#ORDERNO#${no}`, sk: 'ORDERNO' });
export const listKey = (order: Pick<Order, 'merchant_id' | 'created_at' | 'id'>) => ({
  gsi1pk: `MERCHANT#${order.merchant_id}`,
  gsi1sk: `ORDER#${order.created_at}#${order.id}`,
});
export const expiryKey = (order: Pick<Order, 'expires_at' | 'id'>) => ({
  gsi2pk: `EXPIRY#${expiryShard(order.id)}`,
  gsi2sk: `${order.expires_at}#${order.id}`,
});

/**
 * The in-flight index entry, on an order while processing / requires_action and on a refund while pending
 * (payments/repository.ts): what the reconciler asks the channel about. Same gsi2 as the expiry index: an order is
 * never payable and in flight at once. Order and refund ids end in random base62, so the shard function spreads both.
 */
export const inFlightKey = (id: string, since: Date) => ({ gsi2pk: `INFLIGHT#${expiryShard(id)}`, gsi2sk: `${since.toISOString()}#${id}` });

export function expiryShard(id: string): number {
  return id.charCodeAt(id.length - 1) % EXPIRY_SHARDS;
}

export class OrderRepository {
  constructor(readonly table: string) {}

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
