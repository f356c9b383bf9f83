import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { dynamo } from '../commons/clients';
import { publicBaseUrl } from '../commons/config';
import { InternalError } from '../commons/errors';
import { eventItem, type EventType, type PlatformEvent } from '../events/event';
import { ledgerRefusal, transferWrites, type LedgerRefusal, type TransactItem, type Transfer } from '../ledger';
import { buildEvent, type RequestContext } from './snapshot';

/**
 * The one way an order's or a refund's state changes. A change names the states before (as read) and after (as
 * decided); the writer sends ONE TransactWriteItems with:
 *   - the object's write, conditioned on the state it was decided on: its merchant, status and `version`. The
 *     version makes the condition exact, so the snapshot in the event is the object's state, not a guess;
 *   - `version` + 1 and `updated_at` (the writer's, never the caller's);
 *   - the index entries the new status implies (gsi2: the expiry index while payable, the in-flight index while
 *     the channel has to answer; the list index at creation);
 *   - the ledger's transfers (transferWrites);
 *   - the caller's other items, by name (attempt, card velocity slot, channel-event dedupe, order-number claim,
 *     settlement cursor);
 *   - one event per object changed (events/event.ts), in the same transaction: no change without its event, no
 *     event without its change.
 * A refusal comes back by the name of what refused, never by index. Transaction conflicts (another transaction on
 * one of the items, e.g. a busy ledger account) are retried with the same items.
 */
export type { RequestContext };
export type ItemName = 'attempt' | 'velocity' | 'channel_event' | 'order_no' | 'cursor';
export type Refused = SubjectKind | ItemName | 'ledger' | 'contended';
export type SubjectKind = 'order' | 'refund' | 'settlement';

/** What every object the writer changes has: the condition and the event need these. */
export interface Versioned {
  id: string;
  merchant_id: string;
  status: string;
  version: number;
  updated_at: string;
}

/**
 * How one kind of object is stored and shown (orders/subject.ts, payments/refund-subject.ts, settlements/subject.ts):
 * the writer is the same for all of them, and imports none.
 */
export interface Subject<T extends Versioned> {
  kind: SubjectKind;
  key(object: T): Record<string, string>;
  /** The item's other attributes at creation: `type`, list index entries. */
  created(object: T): Record<string, unknown>;
  /** The index attributes a change sets or removes (gsi2: expiry, in flight). */
  index(before: T, after: T, now: Date): { set?: Record<string, unknown>; remove?: string[] };
  /** data.object: the API shape of the object as stored at this version, PII masked. */
  snapshot(object: T, baseUrl: string): Record<string, unknown> & { id: string; object: string; version: number };
  /** The change's one event, or undefined for a change that is none (the writer refuses it). */
  eventType(before: T | undefined, after: T): EventType | undefined;
  /** Throws for a change the object's rules forbid (a programming error: callers decide on the rules first). */
  check?(before: T, after: T): void;
}

export interface ObjectChange<T extends Versioned = Versioned> {
  subject: Subject<T>;
  /** As read; undefined: the object is created by this change. */
  before?: T;
  /** As decided; its version and updated_at are the writer's. */
  after: T;
}

/** Pairs a subject with its states, keeping their type. */
export const change = <T extends Versioned>(subject: Subject<T>, before: T | undefined, after: T): ObjectChange => ({ subject, before, after }) as unknown as ObjectChange;

export interface Change {
  /** At most one per kind: an order, its refund. */
  objects: ObjectChange[];
  transfers?: Transfer[];
  items?: Partial<Record<ItemName, TransactItem>>;
  /** The API call that caused the change (events' `request`); null for the channel, sweeps and the reconciler. */
  request: RequestContext | null;
  now: Date;
  /** For data.object.checkout_url. @default publicBaseUrl() */
  baseUrl?: string;
}

export type WriteResult =
  | {
      committed: true;
      /** Each object as written (with its new version), by kind. */
      written: Partial<Record<SubjectKind, Versioned>>;
      events: PlatformEvent[];
    }
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

const REFUSAL_ORDER: Refused[] = ['order_no', 'channel_event', 'attempt', 'settlement', 'cursor', 'order', 'refund', 'velocity', 'ledger'];
const RETRYABLE = new Set(['TransactionConflict', 'ThrottlingError', 'ProvisionedThroughputExceeded', 'RequestLimitExceeded']);

export interface WriteOptions {
  /** @default 8 */
  maxAttempts?: number;
}

export class ChangeWriter {
  constructor(readonly table: string) {}

  async write(change: Change, options: WriteOptions = {}): Promise<WriteResult> {
    const { items, names, events, written } = this.build(change);
    const maxAttempts = options.maxAttempts ?? 8;
    for (let attempt = 1; ; attempt++) {
      try {
        // A fresh token per attempt: it makes the SDK's own retries of this attempt idempotent.
        await dynamo().send(new TransactWriteCommand({ TransactItems: items, ClientRequestToken: randomUUID() }));
        return { committed: true, written, events };
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

  /** The transaction of a change, each action with its name. */
  build(change: Change) {
    const { now } = change;
    const at = now.toISOString();
    const baseUrl = change.baseUrl ?? publicBaseUrl();
    const items: TransactItem[] = [];
    const names: Array<Refused | 'event'> = [];
    const events: PlatformEvent[] = [];
    const written: Partial<Record<SubjectKind, Versioned>> = {};
    const add = (name: Refused | 'event', item: TransactItem) => {
      items.push(item);
      names.push(name);
    };
    for (const { subject, before, after } of change.objects) {
      const object = next(before, after, at);
      if (before) subject.check?.(before, object);
      const type = subject.eventType(before, object);
      if (!type) throw new InternalError('change_without_event', `The change of ${subject.kind} ${object.id} alters none of what makes an event (status, captured or refunded amount).`);
      const key = subject.key(object);
      add(subject.kind, before ? this.update(key, before, object, subject.index(before, object, now)) : this.put({ ...key, ...subject.created(object), ...object }));
      events.push(buildEvent(type, subject.snapshot(object, baseUrl), before && subject.snapshot(before, baseUrl), change.request, now));
      written[subject.kind] = object;
    }
    for (const [name, item] of Object.entries(change.items ?? {}) as [ItemName, TransactItem][]) add(name, item);
    const merchantId = change.objects[0]?.after.merchant_id;
    for (const event of events) add('event', { Put: { TableName: this.table, Item: eventItem(merchantId!, event) } });
    for (const item of transferWrites(this.table, change.transfers ?? [], now, { reservedItems: items.length })) add('ledger', item);
    return { items, names, events, written };
  }

  private put(item: Record<string, unknown>): TransactItem {
    return { Put: { TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' } };
  }

  /**
   * The Update from `before` to `after`: SET what changed, REMOVE what is gone, conditioned on the merchant, the
   * status and the version as read. An item from before versions existed has none: it must still have none.
   */
  private update(key: Record<string, string>, before: Versioned, after: Versioned, index: { set?: Record<string, unknown>; remove?: string[] }): TransactItem {
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
function next<T extends Versioned>(before: T | undefined, after: T, at: string): T {
  return { ...after, version: (before?.version ?? 0) + 1, updated_at: before ? at : after.updated_at };
}

function strip(item: Record<string, unknown>): Record<string, unknown> {
  const { pk, sk, type, gsi1pk, gsi1sk, gsi2pk, gsi2sk, ttl, ...rest } = item;
  return rest;
}
