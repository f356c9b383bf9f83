import { InternalError } from '../commons/errors';
import type { EventType } from '../events/event';
import { change, type ObjectChange, type Subject, type WriteResult } from '../changes/writer';
import { canTransition, storedOrderToApi, type Order } from './order';
import { expiryKey, inFlightKey, listKey, orderKey } from './repository';

/**
 * How the writer (changes/writer.ts) stores and shows an order: its keys and index entries, its event snapshot
 * and which event each of its changes is.
 */
const STATUS_EVENTS: Record<Order['status'], EventType> = {
  requires_payment: 'order.payment_failed', // an attempt failed: the order is payable again, with last_payment_error
  requires_action: 'order.requires_action',
  processing: 'order.processing',
  requires_capture: 'order.requires_capture',
  succeeded: 'order.succeeded', // a capture of requires_capture too: previous_attributes carry amount_captured
  failed: 'order.payment_failed',
  closed: 'order.closed',
};

/** The one event of an order's change; undefined when no status, captured or refunded amount changed. */
export function orderEventType(before: Order | undefined, after: Order): EventType | undefined {
  if (!before) return 'order.created';
  if (before.status !== after.status) return STATUS_EVENTS[after.status];
  if ((before.amount_refunded ?? 0) !== (after.amount_refunded ?? 0)) return 'order.refunded'; // a refund, or its reversal
  return undefined;
}

/** An order's data.object: the stored state in the API's shape, with the masked payer kept at creation. */
export function orderSnapshot(order: Order, baseUrl: string) {
  const p = order.payer_masked;
  // A stored map comes back in no particular key order; the event shows the API's (name, email, phone).
  const payer = p && { ...(p.name !== undefined ? { name: p.name } : {}), ...(p.email !== undefined ? { email: p.email } : {}), ...(p.phone !== undefined ? { phone: p.phone } : {}) };
  return storedOrderToApi(order, payer, baseUrl);
}

export const orderSubject: Subject<Order> = {
  kind: 'order',
  key: (order) => orderKey(order.id),
  created: (order) => ({ type: 'order', ...listKey(order), ...expiryKey(order) }),
  /**
   * gsi2 holds a payable order in the expiry index and one waiting for the channel in the in-flight index; an
   * order is never both, so they share the attributes. A status change moves it; a change that keeps the status
   * leaves the entry as it is (the reconciler may have requeued it).
   */
  index(before, after, now) {
    if (before.status === after.status) return {};
    if (after.status === 'requires_payment') return { set: expiryKey(after) };
    if (after.status === 'processing' || after.status === 'requires_action') return { set: inFlightKey(after.id, now) };
    return { remove: ['gsi2pk', 'gsi2sk'] };
  },
  snapshot: orderSnapshot,
  eventType: orderEventType,
  check(before, after) {
    if (before.status !== after.status && !canTransition(before.status, after.status)) {
      throw new InternalError('change_invalid', `Order ${after.id} cannot move from ${before.status} to ${after.status} (orders/order.ts).`);
    }
  },
};

/** The change of an order from `before` (undefined: creating it) to `after`. */
export const orderChange = (before: Order | undefined, after: Order): ObjectChange => change(orderSubject, before, after);

/** The order as a committed change wrote it. */
export const writtenOrder = (result: WriteResult): Order => {
  if (!result.committed || !result.written.order) throw new InternalError('change_not_written', 'No order was written.');
  return result.written.order as Order;
};
