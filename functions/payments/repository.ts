import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../commons/clients';
import type { TransactItem } from '../ledger';
import { EXPIRY_SHARDS, inFlightKey } from '../orders/repository';
import type { PaymentAttempt, PaymentOrder, Refund } from './payment';

/**
 * Payment items in the single table: the reads, and the TransactWriteItems actions of the items that are not
 * orders or refunds (attempts, channel-event dedupe, card velocity), which ride in a change's transaction by name.
 * Orders and refunds change only through the writer (changes/writer.ts, refund-subject.ts, orders/subject.ts).
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

/** Channel notifications are deduplicated for as long as the channel may resend one (Alipay: about 25 h), with room. */
export const CHANNEL_EVENT_RETENTION_SECONDS = 30 * 24 * 3600;

/** Order and refund ids end in random base62, so the expiry index's shard function spreads these too. */
export const INFLIGHT_SHARDS = EXPIRY_SHARDS;

/** An entry of the in-flight index, as the reconciler reads it. */
export interface InFlightItem {
  type: 'order' | 'refund';
  id: string;
  merchant_id: string;
  gsi2sk: string;
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
          ttl: Math.floor(now.getTime() / 1000) + CHANNEL_EVENT_RETENTION_SECONDS,
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
