import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../commons/clients';
import { EXPIRY_SHARDS, expiryShard } from '../orders/repository';
import { sourcesOf, type OrderStatus } from '../orders/order';
import type { TransactItem } from '../ledger';
import type { PaymentAttempt, PaymentOrder, Refund } from './payment';

/**
 * Payment items in the single table, and the TransactWriteItems actions that change them. Every
 * action that changes an order's status is conditioned on the statuses the target may be reached
 * from (orders/order.ts), so it composes with the ledger's transfers in one transaction.
 *
 *   order          pk ORDER#<ord>                     sk ORDER      (orders/repository.ts) + payment attributes
 *   attempt        pk PAYMENT#<pay>                   sk PAYMENT    channel paymentId → order; last applied sequence
 *   channel event  pk CHANNELEVENT#<channel>#<event>  sk EVENT      dedupe of notifications (TTL 30 days)
 *   refund         pk REFUND#<re>                     sk REFUND     gsi1 MERCHANT#<mch> / REFUND#<ord>#<created_at>#<re>
 *   card velocity  pk CARDVELOCITY#<platform fp>#<hour> sk VELOCITY  a card's declines in that hour (velocity.ts; TTL)
 *   in flight      gsi2 INFLIGHT#<shard> / <since>#<id> on an order while processing / requires_action and on a
 *                  refund while pending (sparse, like the expiry index): what the reconciler asks the channel about
 */
const orderKey = (id: string) => ({ pk: `ORDER#${id}`, sk: 'ORDER' });
const attemptKey = (id: string) => ({ pk: `PAYMENT#${id}`, sk: 'PAYMENT' });
const eventKey = (channel: string, id: string) => ({ pk: `CHANNELEVENT#${channel}#${id}`, sk: 'EVENT' });
export const refundKey = (id: string) => ({ pk: `REFUND#${id}`, sk: 'REFUND' });

const EVENT_RETENTION_SECONDS = 30 * 24 * 3600;

/** Order and refund ids end in random base62, so the expiry index's shard function spreads these too. */
export const INFLIGHT_SHARDS = EXPIRY_SHARDS;
export const inFlightKey = (id: string, since: Date) => ({ gsi2pk: `INFLIGHT#${expiryShard(id)}`, gsi2sk: `${since.toISOString()}#${id}` });

/** An entry of the in-flight index, as the reconciler reads it. */
export interface InFlightItem {
  type: 'order' | 'refund';
  id: string;
  merchant_id: string;
  gsi2sk: string;
}

export interface OrderChange {
  /** The target status; omit for a change that keeps the status (e.g. a refund). */
  to?: OrderStatus;
  /** The statuses the order may be in (intersected with sourcesOf(to) when `to` is set). */
  from: OrderStatus[];
  /** Also require that the order's current attempt is this one. */
  paymentId?: string;
  set?: Record<string, unknown>;
  remove?: string[];
  add?: Record<string, number>;
  /** Require `attribute >= value` (conditions cannot do arithmetic: the counters are kept for this). */
  atLeast?: Record<string, number>;
  /** Require `attribute < value`, an absent attribute counting as 0. */
  below?: Record<string, number>;
  /** Refuse an order whose expires_at has passed (it reads as closed). */
  notExpiredAt?: Date;
}

export class PaymentRepository {
  constructor(readonly table: string) {}

  async getOrder(merchantId: string, id: string): Promise<PaymentOrder | undefined> {
    const { Item } = await dynamo().send(new GetCommand({ TableName: this.table, Key: orderKey(id), ConsistentRead: true }));
    return Item && Item.merchant_id === merchantId ? strip<PaymentOrder>(Item) : undefined;
  }

  /**
   * The merchant that owns an order, by order id alone: the one unscoped read, for the hosted checkout, whose
   * caller (the payer's browser) is identified by the unguessable order id itself. Everything after this goes
   * through the service scoped by the merchant it returns.
   */
  async merchantOfOrder(id: string): Promise<string | undefined> {
    const { Item } = await dynamo().send(
      new GetCommand({ TableName: this.table, Key: orderKey(id), ProjectionExpression: 'merchant_id', ConsistentRead: true }),
    );
    return typeof Item?.merchant_id === 'string' ? Item.merchant_id : undefined;
  }

  async getAttempt(id: string): Promise<PaymentAttempt | undefined> {
    const { Item } = await dynamo().send(new GetCommand({ TableName: this.table, Key: attemptKey(id), ConsistentRead: true }));
    return Item ? strip<PaymentAttempt>(Item) : undefined;
  }

  async getRefund(merchantId: string, id: string): Promise<Refund | undefined> {
    const { Item } = await dynamo().send(new GetCommand({ TableName: this.table, Key: refundKey(id), ConsistentRead: true }));
    return Item && Item.merchant_id === merchantId ? strip<Refund>(Item) : undefined;
  }

  /** An order's refunds, oldest first (gsi1: eventually consistent, as every list). */
  async listRefunds(merchantId: string, orderId: string): Promise<Refund[]> {
    const out: Refund[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await dynamo().send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :pk AND begins_with(gsi1sk, :prefix)',
          ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}`, ':prefix': `REFUND#${orderId}#` },
          ExclusiveStartKey: start,
        }),
      );
      out.push(...(page.Items ?? []).map((i) => strip<Refund>(i)));
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }

  /** The order's conditional Update, for a transaction. */
  orderUpdate(order: Pick<PaymentOrder, 'id' | 'merchant_id' | 'expires_at'>, change: OrderChange, now: Date): TransactItem {
    const from = change.to ? sourcesOf(change.to).filter((s) => change.from.includes(s)) : change.from;
    if (from.length === 0) throw new Error(`No status can move to ${change.to} from ${change.from.join(', ')}`);
    const names: Record<string, string> = { '#status': 'status', '#merchant': 'merchant_id' };
    const values: Record<string, unknown> = { ':merchant': order.merchant_id };
    const set: Record<string, unknown> = { ...change.set, updated_at: now.toISOString() };
    const remove = [...(change.remove ?? [])];
    if (change.to) {
      set.status = change.to;
      // gsi2 holds a payable order in the expiry index (orders/repository.ts), one waiting for the channel
      // in the in-flight index; an order is never both, so they share the attributes.
      if (change.to === 'requires_payment') {
        set.gsi2pk = `EXPIRY#${expiryShard(order.id)}`;
        set.gsi2sk = `${order.expires_at}#${order.id}`;
      } else if (change.to === 'processing' || change.to === 'requires_action') Object.assign(set, inFlightKey(order.id, now));
      else remove.push('gsi2pk', 'gsi2sk');
    }
    let n = 0;
    const name = (field: string) => {
      const key = `#n${n++}`;
      names[key] = field;
      return key;
    };
    const value = (v: unknown) => {
      const key = `:v${n++}`;
      values[key] = v;
      return key;
    };
    const sets = Object.entries(set).map(([f, v]) => `${name(f)} = ${value(v)}`);
    const adds = Object.entries(change.add ?? {}).map(([f, v]) => `${name(f)} ${value(v)}`);
    const removes = remove.map(name);
    const conditions = [`#merchant = :merchant`, `#status IN (${from.map((s) => value(s)).join(', ')})`];
    if (change.paymentId) conditions.push(`${name('payment_id')} = ${value(change.paymentId)}`);
    for (const [f, v] of Object.entries(change.atLeast ?? {})) conditions.push(`${name(f)} >= ${value(v)}`);
    for (const [f, v] of Object.entries(change.below ?? {})) {
      const n = name(f);
      conditions.push(`(attribute_not_exists(${n}) OR ${n} < ${value(v)})`);
    }
    if (change.notExpiredAt) conditions.push(`${name('expires_at')} > ${value(change.notExpiredAt.toISOString())}`);
    return {
      Update: {
        TableName: this.table,
        Key: orderKey(order.id),
        UpdateExpression: [`SET ${sets.join(', ')}`, adds.length ? `ADD ${adds.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : '']
          .filter(Boolean)
          .join(' '),
        ConditionExpression: conditions.join(' AND '),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
    };
  }

  attemptPut(attempt: PaymentAttempt): TransactItem {
    return {
      Put: {
        TableName: this.table,
        Item: { ...attemptKey(attempt.id), type: 'payment', ...attempt },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
  }

  /** Updates an attempt; with `sequence`, only if no later (or equal) channel sequence was applied. */
  attemptUpdate(id: string, set: Partial<PaymentAttempt>, now: Date, sequence?: number): TransactItem {
    const entries = Object.entries({ ...set, updated_at: now.toISOString(), ...(sequence !== undefined ? { last_sequence: sequence } : {}) });
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets = entries.map(([f, v], i) => {
      names[`#a${i}`] = f;
      values[`:a${i}`] = v;
      return `#a${i} = :a${i}`;
    });
    let condition = 'attribute_exists(pk)';
    if (sequence !== undefined) {
      names['#seq'] = 'last_sequence';
      values[':seq'] = sequence;
      condition += ' AND (attribute_not_exists(#seq) OR #seq < :seq)';
    }
    return {
      Update: {
        TableName: this.table,
        Key: attemptKey(id),
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
    };
  }

  eventPut(channel: string, event: { eventId: string; paymentId: string; sequence: number; status: string }, now: Date): TransactItem {
    return {
      Put: {
        TableName: this.table,
        Item: {
          ...eventKey(channel, event.eventId),
          type: 'channel_event',
          event_id: event.eventId,
          payment_id: event.paymentId,
          sequence: event.sequence,
          status: event.status,
          received_at: now.toISOString(),
          ttl: Math.floor(now.getTime() / 1000) + EVENT_RETENTION_SECONDS,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
  }

  /** Takes one of a card's decline slots in a window (velocity.ts), refused when all `limit` are taken. */
  cardSlotTake(counter: { pk: string; ttl: number }, limit: number): TransactItem {
    return {
      Update: {
        TableName: this.table,
        Key: { pk: counter.pk, sk: 'VELOCITY' },
        UpdateExpression: 'ADD #n :one SET #type = :type, #ttl = :ttl',
        ConditionExpression: 'attribute_not_exists(#n) OR #n < :limit',
        ExpressionAttributeNames: { '#n': 'declines', '#type': 'type', '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':one': 1, ':limit': limit, ':type': 'card_velocity', ':ttl': counter.ttl },
      },
    };
  }

  /** Gives a slot back (the attempt was not declined). Unconditional: it must never cancel the result it rides with. */
  cardSlotRelease(pk: string, now: Date): TransactItem {
    return {
      Update: {
        TableName: this.table,
        Key: { pk, sk: 'VELOCITY' },
        UpdateExpression: 'ADD #n :minus SET #ttl = if_not_exists(#ttl, :ttl)',
        ExpressionAttributeNames: { '#n': 'declines', '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':minus': -1, ':ttl': Math.floor(now.getTime() / 1000) + 7200 },
      },
    };
  }

  refundPut(refund: Refund): TransactItem {
    return {
      Put: {
        TableName: this.table,
        Item: {
          ...refundKey(refund.id),
          type: 'refund',
          gsi1pk: `MERCHANT#${refund.merchant_id}`,
          gsi1sk: `REFUND#${refund.order_id}#${refund.created_at}#${refund.id}`,
          ...inFlightKey(refund.id, new Date(refund.created_at)),
          ...refund,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
  }

  /** Moves a refund out of `pending`, once (and out of the in-flight index with it). */
  refundUpdate(id: string, set: Partial<Refund>, now: Date): TransactItem {
    const entries = Object.entries({ ...set, updated_at: now.toISOString() });
    const names: Record<string, string> = { '#status': 'status' };
    const values: Record<string, unknown> = { ':pending': 'pending' };
    const sets = entries.map(([f, v], i) => {
      names[`#r${i}`] = f;
      values[`:r${i}`] = v;
      return `#r${i} = :r${i}`;
    });
    return {
      Update: {
        TableName: this.table,
        Key: refundKey(id),
        UpdateExpression: `SET ${sets.join(', ')}${set.status && set.status !== 'pending' ? ' REMOVE gsi2pk, gsi2sk' : ''}`,
        ConditionExpression: '#status = :pending',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
    };
  }

  /** In-flight orders and refunds of one shard that entered (or were last looked at) before `before`, oldest first. */
  async dueForReconciliation(shard: number, before: Date, limit: number): Promise<InFlightItem[]> {
    const { Items = [] } = await dynamo().send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'gsi2',
        KeyConditionExpression: 'gsi2pk = :pk AND gsi2sk < :before',
        ExpressionAttributeNames: { '#type': 'type' },
        ExpressionAttributeValues: { ':pk': `INFLIGHT#${shard}`, ':before': before.toISOString() },
        ProjectionExpression: '#type, id, merchant_id, gsi2sk',
        Limit: limit,
      }),
    );
    return Items as InFlightItem[];
  }

  /**
   * Moves an entry the channel could not settle to the back of its shard, so a run's `limit` reaches the newer
   * ones too. Conditioned on the entry as read: one that settled or moved meanwhile is left alone.
   */
  async requeue(item: InFlightItem, now: Date): Promise<void> {
    await this.send({
      Update: {
        TableName: this.table,
        Key: item.type === 'order' ? orderKey(item.id) : refundKey(item.id),
        UpdateExpression: 'SET gsi2sk = :next',
        ConditionExpression: 'gsi2sk = :seen',
        ExpressionAttributeValues: { ':seen': item.gsi2sk, ':next': inFlightKey(item.id, now).gsi2sk },
      },
    });
  }

  /** A single item's update sent on its own (no ledger transfer involved). True if its condition held. */
  async send(item: TransactItem): Promise<boolean> {
    try {
      await dynamo().send(new UpdateCommand(item.Update as ConstructorParameters<typeof UpdateCommand>[0]));
      return true;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }
}

function strip<T>(item: Record<string, unknown>): T {
  const { pk, sk, type, gsi1pk, gsi1sk, gsi2pk, gsi2sk, ttl, ...rest } = item;
  return rest as T;
}
