import { randomBase62 } from '../commons/ids';

/**
 * Events: what every change of an order or a refund writes, in the same TransactWriteItems as the change
 * (changes/writer.ts; the catalogue, versions and the write-unit figure: docs/events.md). This module is the one definition of an event's shape and of its item; the
 * writer creates them, the publisher, the deliverers and the events API read them.
 *
 *   event  pk EVENTS#<merchant>  sk <evt id>   one partition per merchant, newest last: `GET /v1/events` is a
 *          Query of the table's own key (no index write per event); ids are time-ordered, so created[gte] /
 *          created[lt] are key ranges. Until the publisher has fanned it out, the item also sits in gsi2
 *          (UNPUBLISHED#<shard> / <created_at>#<id>), which the sweeper reads; TTL 30 days.
 */
export const EVENT_TYPES = [
  'order.created',
  'order.requires_action',
  'order.processing',
  'order.requires_capture',
  'order.succeeded',
  'order.payment_failed',
  'order.refunded',
  'order.closed',
  'refund.created',
  'refund.succeeded',
  'refund.failed',
  'settlement.created',
  'settlement.paid',
  'settlement.failed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** The API version events are rendered in (docs/events.md). */
export const API_VERSION = '2026-12-01';
export const EVENT_RETENTION_SECONDS = 30 * 24 * 3600;
export const UNPUBLISHED_SHARDS = 4;

/** The event as merchants receive it (webhook body, `GET /v1/events/{id}`). */
export interface PlatformEvent {
  id: string;
  object: 'event';
  type: EventType;
  created_at: string;
  api_version: string;
  livemode: false;
  data: {
    /** The API object after the change, with its `version`; payer PII masked. */
    object: Record<string, unknown> & { id: string; object: string; version: number };
    /** The API fields the change altered, with their values before it. */
    previous_attributes?: Record<string, unknown>;
  };
  /** The API call that caused the change; null for the channel, sweeps and the reconciler. */
  request: { id: string; idempotency_key: string | null } | null;
}

/** The stored item: the rendered body kept as the exact bytes every delivery sends. */
export interface EventItem {
  pk: string;
  sk: string;
  type: 'event';
  id: string;
  merchant_id: string;
  event_type: EventType;
  /** data.object.id: the order or refund. */
  object_id: string;
  created_at: string;
  body: string;
  ttl: number;
  gsi2pk?: string;
  gsi2sk?: string;
}

const TIME_WIDTH = 8; // base62 milliseconds: 62^8 ms ≈ 6,900 years
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'; // ASCII order = value order

/** `evt_<8 time chars><16 random>`: sorts by creation time (then randomly within a millisecond). */
export function newEventId(now: Date): string {
  let ms = now.getTime();
  let time = '';
  for (let i = 0; i < TIME_WIDTH; i++) {
    time = ALPHABET[ms % 62] + time;
    ms = Math.floor(ms / 62);
  }
  return `evt_${time}${randomBase62(16)}`;
}

/** The lowest event id that can have been created at or after `at` (for created[gte] / created[lt] key ranges). */
export function eventIdFloor(at: Date): string {
  return newEventId(at).slice(0, 4 + TIME_WIDTH);
}

export const eventKey = (merchantId: string, id: string) => ({ pk: `EVENTS#${merchantId}`, sk: id });

export function unpublishedShard(id: string): number {
  return id.charCodeAt(id.length - 1) % UNPUBLISHED_SHARDS;
}

export function eventItem(merchantId: string, event: PlatformEvent): EventItem {
  return {
    ...eventKey(merchantId, event.id),
    type: 'event',
    id: event.id,
    merchant_id: merchantId,
    event_type: event.type,
    object_id: event.data.object.id,
    created_at: event.created_at,
    body: JSON.stringify(event),
    ttl: Math.floor(Date.parse(event.created_at) / 1000) + EVENT_RETENTION_SECONDS,
    gsi2pk: `UNPUBLISHED#${unpublishedShard(event.id)}`,
    gsi2sk: `${event.created_at}#${event.id}`,
  };
}
