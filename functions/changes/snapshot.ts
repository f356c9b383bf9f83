import { isDeepStrictEqual } from 'node:util';
import { API_VERSION, newEventId, type EventType, type PlatformEvent } from '../events/event';
import type { Payer } from '../orders/order';
import { refundToApi, storedOrderToApi, type PaymentOrder, type Refund } from '../payments/payment';

/**
 * What an event says about a change: its type, the object's snapshot after it (payer masked) and the API fields it
 * altered. Pure: the writer (writer.ts) calls these with the states before and after the change it writes.
 */

/** The API's request context of a change: null for the channel's notifications, sweeps and the reconciler. */
export interface RequestContext {
  id: string;
  idempotency_key: string | null;
}

/**
 * The payer as events show it: enough for a merchant to recognise whose order it is, not enough to contact them.
 * `Jane Doe` → `J***`, `jane@example.com` → `j***@example.com`, `+8613800001234` → `+86*******1234`.
 */
export function maskPayer(payer: Payer): Payer {
  return {
    ...(payer.name !== undefined ? { name: maskName(payer.name) } : {}),
    ...(payer.email !== undefined ? { email: maskEmail(payer.email) } : {}),
    ...(payer.phone !== undefined ? { phone: maskPhone(payer.phone) } : {}),
  };
}

const maskName = (name: string) => `${[...name.trim()][0] ?? ''}***`;

function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  return `${[...email.slice(0, Math.max(at, 0))][0] ?? ''}***${email.slice(at)}`;
}

/** E.164 (orders/schemas.ts): "+", the first two digits (a country code's start), stars, the last four. */
function maskPhone(phone: string): string {
  const keepStart = phone.startsWith('+') ? 3 : 2;
  if (phone.length <= keepStart + 4) return '*'.repeat(phone.length);
  return phone.slice(0, keepStart) + '*'.repeat(phone.length - keepStart - 4) + phone.slice(-4);
}

/** An order's data.object: the stored state in the API's shape, with the masked payer kept at creation. */
export function orderSnapshot(order: PaymentOrder, baseUrl: string) {
  return storedOrderToApi(order, order.payer_masked, baseUrl);
}

export function refundSnapshot(refund: Refund) {
  return refundToApi(refund);
}

const ORDER_STATUS_EVENTS: Record<PaymentOrder['status'], EventType> = {
  requires_payment: 'order.payment_failed', // an attempt failed: the order is payable again, with last_payment_error
  requires_action: 'order.requires_action',
  processing: 'order.processing',
  requires_capture: 'order.requires_capture',
  succeeded: 'order.succeeded', // a capture of requires_capture too: previous_attributes carry amount_captured
  failed: 'order.payment_failed',
  closed: 'order.closed',
};

/**
 * The one event of an order's change, or undefined when the change is none of the kinds that make an event (no
 * status, captured or refunded amount changed): the writer refuses to write such a change.
 */
export function orderEventType(before: PaymentOrder | undefined, after: PaymentOrder): EventType | undefined {
  if (!before) return 'order.created';
  if (before.status !== after.status) return ORDER_STATUS_EVENTS[after.status];
  if ((before.amount_refunded ?? 0) !== (after.amount_refunded ?? 0)) return 'order.refunded'; // a refund, or its reversal
  return undefined;
}

export function refundEventType(before: Refund | undefined, after: Refund): EventType | undefined {
  if (!before) return 'refund.created';
  if (before.status === after.status) return undefined;
  return after.status === 'succeeded' ? 'refund.succeeded' : after.status === 'failed' ? 'refund.failed' : undefined;
}

/** The API fields whose values differ, with their values before; `version` always moves by one, so it is left out. */
export function previousAttributes(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (key === 'version') continue;
    if (!isDeepStrictEqual(before[key], after[key])) out[key] = before[key] ?? null;
  }
  return out;
}

export function buildEvent(
  type: EventType,
  object: PlatformEvent['data']['object'],
  before: Record<string, unknown> | undefined,
  request: RequestContext | null,
  now: Date,
): PlatformEvent {
  return {
    id: newEventId(now),
    object: 'event',
    type,
    created_at: now.toISOString(),
    api_version: API_VERSION,
    livemode: false,
    data: { object, ...(before ? { previous_attributes: previousAttributes(before, object) } : {}) },
    request,
  };
}
