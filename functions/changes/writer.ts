import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { dynamo } from '../commons/clients';
import { publicBaseUrl } from '../commons/config';
import { InternalError } from '../commons/errors';
import { eventItem, type PlatformEvent } from '../events/event';
import { ledgerRefusal, transferWrites, type LedgerRefusal, type TransactItem, type Transfer } from '../ledger';
import { canTransition } from '../orders/order';
import { expiryKey, listKey, orderKey } from '../orders/repository';
import type { PaymentOrder, Refund } from '../payments/payment';
import { inFlightKey, refundKey } from '../payments/repository';
import { buildEvent, orderEventType, orderSnapshot, refundEventType, refundSnapshot, type RequestContext } from './snapshot';

/**
 * The one way an order's or a refund's state changes. A change names the states before (as read) and after (as
 * decided); the writer sends ONE TransactWriteItems with:
 *   - the object's write, conditioned on the state it was decided on: its merchant, status and `version`. The
 *     version makes the condition exact, so the snapshot in the event is the object's state, not a guess;
 *   - `version` + 1 and `updated_at` (the writer's, never the caller's);
 *   - the index entries the new status implies (gsi2: the expiry index while payable, the in-flight index while
 *     the channel has to answer; the list index at creation);
 *   - the ledger's transfers (transferWrites);
 *   - the caller's other items, by name (attempt, card velocity slot, channel-event dedupe, order-number claim);
 *   - one event per object changed (events/event.ts), in the same transaction: no change without its event, no
 *     event without its change.
 * A refusal comes back by the name of what refused, never by index. Transaction conflicts (another transaction on
 * one of the items, e.g. a busy ledger account) are retried with the same items.
 */
export type { RequestContext };
export type ItemName = 'attempt' | 'velocity' | 'channel_event' | 'order_no';
export type Refused = 'order' | 'refund' | ItemName | 'ledger' | 'contended';

export interface Change {
  /** `before` undefined: the order is created by this change. `after`'s version and updated_at are the writer's. */
  order?: { before?: PaymentOrder; after: PaymentOrder };
  refund?: { before?: Refund; after: Refund };
  transfers?: Transfer[];
  items?: Partial<Record<ItemName, TransactItem>>;
  /** The API call that caused the change (events' `request`); null for the channel, sweeps and the reconciler. */
  request: RequestContext | null;
  now: Date;
  /** For data.object.checkout_url. @default publicBaseUrl() */
  baseUrl?: string;
}

export type WriteResult =
  | { committed: true; order?: PaymentOrder; refund?: Refund; events: PlatformEvent[] }
  | {
      committed: false;
      refused: Refused;
      /** Every part that refused (`refused` is the first of them in REFUSAL_ORDER). */
      all: Refused[];
      /** The ledger action that refused, when `refused` is 'ledger'. */
      ledger?: LedgerRefusal;
      /** The refused item as stored (ALL_OLD), when it asked for it: the order and refund always do. */
      current?: Record<string, unknown>;
    };

const REFUSAL_ORDER: Refused[] = ['order_no', 'channel_event', 'attempt', 'order', 'refund', 'velocity', 'ledger'];
const RETRYABLE = new Set(['TransactionConflict', 'ThrottlingError', 'ProvisionedThroughputExceeded', 'RequestLimitExceeded']);

export interface WriteOptions {
  /** @default 8 */
  maxAttempts?: number;
}

export class ChangeWriter {
  constructor(readonly table: string) {}

  async write(change: Change, options: WriteOptions = {}): Promise<WriteResult> {
    const { items, names, events, order, refund } = this.build(change);
    const maxAttempts = options.maxAttempts ?? 8;
    for (let attempt = 1; ; attempt++) {
      try {
        // A fresh token per attempt: it makes the SDK's own retries of this attempt idempotent.
        await dynamo().send(new TransactWriteCommand({ TransactItems: items, ClientRequestToken: randomUUID() }));
        return { committed: true, order, refund, events };
      } catch (error) {
        if (!(error instanceof Error) || error.name !== 'TransactionCanceledException') throw error;
        const cancelled = (error as { CancellationReasons?: { Code?: string; Item?: Record<string, unknown> }[] }).CancellationReasons ?? [];
        const codes = items.map((_, i) => cancelled[i]?.Code ?? 'Unknown');
        if (!codes.includes('ConditionalCheckFailed')) {
          if (codes.some((c) => RETRYABLE.has(c)) && attempt < maxAttempts) {
            await sleep(Math.random() * Math.min(320, 10 * 2 ** attempt)); // full jitter, 10 ms doubling
            continue;
          }
          if (codes.some((c) => RETRYABLE.has(c))) return { committed: false, refused: 'contended', all: ['contended'] };
          throw new InternalError('change_not_written', `The change was cancelled: ${codes.join(', ')}`, { cause: error });
        }
        const all = [...new Set(names.filter((n, i) => codes[i] === 'ConditionalCheckFailed'))] as Refused[];
        // The caller's own items first (a duplicate channel event explains everything after it), then the objects
        // (a stale order explains a ledger refusal that follows from it), then the ledger.
        const refused = REFUSAL_ORDER.find((n) => all.includes(n)) ?? all[0]!;
        const refusedAt = names.indexOf(refused);
        const old = cancelled[refusedAt]?.Item;
        return {
          committed: false,
          refused,
          all,
          ...(refused === 'ledger' ? { ledger: ledgerRefusal(items, codes) } : {}),
          ...(old ? { current: strip(unmarshall(old as never)) } : {}),
        };
      }
    }
  }

  /** The transaction of a change, each action with its name. Exported for tests that measure items. */
  build(change: Change) {
    const { now } = change;
    const at = now.toISOString();
    const baseUrl = change.baseUrl ?? publicBaseUrl();
    const items: TransactItem[] = [];
    const names: Array<Refused | 'event'> = [];
    const events: PlatformEvent[] = [];
    const add = (name: Refused | 'event', item: TransactItem) => {
      items.push(item);
      names.push(name);
    };
    let order: PaymentOrder | undefined;
    let refund: Refund | undefined;

    if (change.order) {
      const { before, after } = change.order;
      order = next(before, after, at);
      if (before && before.status !== order.status && !canTransition(before.status, order.status)) {
        throw new InternalError('change_invalid', `Order ${order.id} cannot move from ${before.status} to ${order.status} (orders/order.ts).`);
      }
      const type = orderEventType(before, order);
      if (!type) throw new InternalError('change_without_event', `The change of order ${order.id} alters no status, captured or refunded amount.`);
      add('order', before ? this.update(orderKey(order.id), before, order, orderIndex(before, order, now)) : this.put({ ...orderKey(order.id), type: 'order', ...listKey(order), ...expiryKey(order), ...order }));
      events.push(buildEvent(type, orderSnapshot(order, baseUrl), before && orderSnapshot(before, baseUrl), change.request, now));
    }
    if (change.refund) {
      const { before, after } = change.refund;
      refund = next(before, after, at);
      const type = refundEventType(before, refund);
      if (!type) throw new InternalError('change_without_event', `The change of refund ${refund.id} alters no status.`);
      if (before) {
        add('refund', this.update(refundKey(refund.id), before, refund, refund.status === 'pending' ? {} : { remove: ['gsi2pk', 'gsi2sk'] }));
      } else {
        add(
          'refund',
          this.put({
            ...refundKey(refund.id),
            type: 'refund',
            gsi1pk: `MERCHANT#${refund.merchant_id}`,
            gsi1sk: `REFUND#${refund.order_id}#${refund.created_at}#${refund.id}`,
            ...(refund.status === 'pending' ? inFlightKey(refund.id, new Date(refund.created_at)) : {}),
            ...refund,
          }),
        );
      }
      events.push(buildEvent(type, refundSnapshot(refund), before && refundSnapshot(before), change.request, now));
    }
    for (const [name, item] of Object.entries(change.items ?? {}) as [ItemName, TransactItem][]) add(name, item);
    for (const event of events) add('event', { Put: { TableName: this.table, Item: eventItem(merchantOf(change), event) } });
    for (const item of transferWrites(this.table, change.transfers ?? [], now, { reservedItems: items.length })) add('ledger', item);
    return { items, names, events, order, refund };
  }

  private put(item: Record<string, unknown>): TransactItem {
    return { Put: { TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' } };
  }

  /**
   * The Update from `before` to `after`: SET what changed, REMOVE what is gone, conditioned on the merchant, the
   * status and the version as read. An item from before versions existed has none: it must still have none.
   */
  private update(key: Record<string, string>, before: PaymentOrder | Refund, after: PaymentOrder | Refund, index: { set?: Record<string, unknown>; remove?: string[] }): TransactItem {
    const names: Record<string, string> = { '#merchant': 'merchant_id', '#status': 'status', '#version': 'version' };
    const values: Record<string, unknown> = { ':merchant': before.merchant_id, ':status': before.status };
    let n = 0;
    const name = (field: string) => ((names[`#n${n}`] = field), `#n${n++}`);
    const value = (v: unknown) => ((values[`:v${n}`] = v), `:v${n++}`);
    const b = before as unknown as Record<string, unknown>;
    const a = after as unknown as Record<string, unknown>;
    const sets: string[] = [];
    const removes: string[] = [];
    for (const field of new Set([...Object.keys(b), ...Object.keys(a)])) {
      if (a[field] === undefined) {
        if (b[field] !== undefined) removes.push(name(field));
      } else if (!isDeepStrictEqual(a[field], b[field])) sets.push(`${name(field)} = ${value(a[field])}`);
    }
    for (const [field, v] of Object.entries(index.set ?? {})) sets.push(`${name(field)} = ${value(v)}`);
    for (const field of index.remove ?? []) removes.push(name(field));
    let condition = '#merchant = :merchant AND #status = :status AND ';
    if (before.version === undefined) condition += 'attribute_not_exists(#version)';
    else {
      values[':version'] = before.version;
      condition += '#version = :version';
    }
    return {
      Update: {
        TableName: this.table,
        Key: key,
        UpdateExpression: [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].filter(Boolean).join(' '),
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }
}

/** The events' `request` of a caller: its API request, or null when no API call caused the change. */
export function requestOf(caller: { requestId?: string; idempotencyKey?: string | null }): RequestContext | null {
  return caller.requestId ? { id: caller.requestId, idempotency_key: caller.idempotencyKey ?? null } : null;
}

/** The state after: the caller's, with the writer's version and updated_at. */
function next<T extends { version: number; updated_at: string }>(before: T | undefined, after: T, at: string): T {
  return { ...after, version: (before?.version ?? 0) + 1, updated_at: before ? at : after.updated_at };
}

/**
 * gsi2 holds a payable order in the expiry index (orders/repository.ts) and one waiting for the channel in the
 * in-flight index (payments/repository.ts); an order is never both, so they share the attributes. A status
 * change moves it; a change that keeps the status leaves the entry as it is (the reconciler may have requeued it).
 */
function orderIndex(before: PaymentOrder, after: PaymentOrder, now: Date): { set?: Record<string, unknown>; remove?: string[] } {
  if (before.status === after.status) return {};
  if (after.status === 'requires_payment') return { set: expiryKey(after) };
  if (after.status === 'processing' || after.status === 'requires_action') return { set: inFlightKey(after.id, now) };
  return { remove: ['gsi2pk', 'gsi2sk'] };
}

function merchantOf(change: Change): string {
  return (change.order?.after.merchant_id ?? change.refund?.after.merchant_id)!;
}

function strip(item: Record<string, unknown>): Record<string, unknown> {
  const { pk, sk, type, gsi1pk, gsi1sk, gsi2pk, gsi2sk, ttl, ...rest } = item;
  return rest;
}
