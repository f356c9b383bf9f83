import { ConflictError } from '../commons/errors';

export const ORDER_STATUSES = [
  'requires_payment',
  'requires_action',
  'processing',
  'requires_capture',
  'succeeded',
  'failed',
  'closed',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/**
 * The order lifecycle (docs/order-lifecycle.md). Writes enforce it with a condition on the
 * current status, so two racing requests cannot both move an order.
 */
const TRANSITIONS: Record<OrderStatus, readonly OrderStatus[]> = {
  requires_payment: ['processing', 'requires_action', 'requires_capture', 'succeeded', 'closed'],
  requires_action: ['processing', 'requires_capture', 'succeeded', 'requires_payment', 'closed'],
  // requires_action: confirm claims the order (→ processing) before the channel answers "3-D Secure".
  processing: ['requires_action', 'requires_capture', 'succeeded', 'failed', 'requires_payment'],
  requires_capture: ['succeeded', 'closed'],
  succeeded: [],
  failed: [],
  closed: [],
};

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The statuses an order may be in for a write that moves it to `to`. */
export function sourcesOf(to: OrderStatus): OrderStatus[] {
  return ORDER_STATUSES.filter((from) => canTransition(from, to));
}

export function transitionConflict(id: string, from: OrderStatus, to: OrderStatus): ConflictError {
  return new ConflictError(
    `order_status_${from}`,
    `Order '${id}' is ${from}, so it cannot become ${to}. Retrieve the order to see its current status.`,
    { extra: { status: from } },
  );
}

/** The payer's language for receipts: sent on create as payer.locale, or the hosted checkout's when the payer pays there. */
export const PAYER_LOCALES = ['en', 'zh-CN'] as const;
export type PayerLocale = (typeof PAYER_LOCALES)[number];

/** The payer's contact details: sealed together (payer_ciphertext), never stored or logged in plaintext. */
export interface Payer {
  name?: string;
  email?: string;
  phone?: string;
}

export type CaptureMethod = 'automatic' | 'manual';

/** An order as stored, minus key attributes; payer PII only ever as ciphertext. */
export interface Order {
  id: string;
  merchant_id: string;
  merchant_order_no: string;
  status: OrderStatus;
  amount: number;
  amount_refunded: number;
  currency: string;
  description?: string;
  capture_method: CaptureMethod;
  notify_url?: string;
  return_url?: string;
  metadata: Record<string, string>;
  payer_ciphertext?: Uint8Array;
  /** payer.locale, in plaintext (a language is no contact detail): the checkout sets it without opening the payer. */
  payer_locale?: PayerLocale;
  expires_at: string;
  created_at: string;
  updated_at: string;
  closed_at?: string;
  close_reason?: 'merchant' | 'expired';
}

/**
 * An unpaid order past its expiry is closed, whether or not the sweep has written that yet,
 * so readers never see a payable order that can no longer be paid.
 */
export function effective(order: Order, now: Date): Order {
  if (order.status === 'requires_payment' && Date.parse(order.expires_at) <= now.getTime()) {
    return { ...order, status: 'closed', closed_at: order.expires_at, close_reason: 'expired' };
  }
  return order;
}

export function toApi(order: Order, payer: Payer | undefined, baseUrl: string) {
  return {
    id: order.id,
    object: 'order' as const,
    livemode: false,
    merchant_order_no: order.merchant_order_no,
    status: order.status,
    amount: order.amount,
    amount_refunded: order.amount_refunded,
    currency: order.currency,
    description: order.description ?? null,
    capture_method: order.capture_method,
    payer: payer || order.payer_locale ? { ...payer, ...(order.payer_locale ? { locale: order.payer_locale } : {}) } : null,
    metadata: order.metadata,
    notify_url: order.notify_url ?? null,
    return_url: order.return_url ?? null,
    checkout_url: `${baseUrl}/checkout/${order.id}`,
    expires_at: order.expires_at,
    closed_at: order.closed_at ?? null,
    close_reason: order.close_reason ?? null,
    created_at: order.created_at,
    updated_at: order.updated_at,
  };
}

export type ApiOrder = ReturnType<typeof toApi>;
