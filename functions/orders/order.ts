import type { ChannelId, DeclineCode } from '../channels';
import { msg } from '../commons/messages';
import { ConflictError } from '../commons/errors';
import type { PaymentFeeRate } from '../ledger';
import type { FxLock } from '../fx/convert';

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
    msg['order_status.transition']({ id, from, to }),
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

/**
 * What payments add to the stored order item (pk ORDER#<id>, sk ORDER), all absent until the first confirm.
 * Amounts are integer minor units. No PAN or CVC is ever part of any of these.
 */
export interface CardSummary {
  brand: string;
  last4: string;
  exp_month: number;
  exp_year: number;
  /** HMAC-SHA256 of the PAN under the merchant's fingerprint key (fingerprint.ts): same card and merchant, same value; not reversible. */
  fingerprint: string;
}

export type PaymentMethodDetails = { type: 'card'; card: CardSummary } | { type: 'wallet' };

/** Stripe's `last_payment_error`: set when an attempt fails, cleared by the next attempt. */
export interface LastPaymentError {
  type: 'card_error' | 'api_error';
  code: string;
  decline_code?: DeclineCode;
  message: string;
  payment_id: string;
}

export interface NextAction {
  type: 'three_d_secure';
  challenge_id: string;
}

export interface PaymentAttributes {
  /** The current (latest) attempt. */
  payment_id?: string;
  channel?: ChannelId;
  /** The channel's id for the current attempt; capture, void and refund use it. */
  channel_ref?: string;
  payment_method_details?: PaymentMethodDetails;
  /** The kept card summary, sealed (commons/crypto.ts) with {purpose: 'card', merchant, record: order id}. */
  card_ciphertext?: Uint8Array;
  last_payment_error?: LastPaymentError;
  next_action?: NextAction;
  amount_authorized?: number;
  amount_captured?: number;
  /** amount_captured − amount_refunded (pending refunds included): what a refund's condition checks. */
  amount_refundable?: number;
  paid_at?: string;
  /** The fee rate in force at the current attempt's confirm; captures charge it (absent on older orders). */
  fee_rate?: PaymentFeeRate;
  /**
   * A converted payment's exchange (the order's currency is not its merchant's settlement currency), locked at the
   * current attempt's confirm with fee_rate: every later step converts at it (functions/fx, docs/settlement.md § FX).
   */
  fx?: FxLock;
  /** Converted payments: settlement-currency minor units the order's refunds took from the merchant so far (reserved ones included). */
  fx_refunded?: number;
  /** Declines of this order's attempts (velocity.ts): at ORDER_DECLINE_LIMIT it takes no more. */
  declined_attempts?: number;
  /** The card velocity counter (pk) whose slot the current attempt holds until its result; never shown. */
  card_velocity?: string;
}


/** An order as stored, minus key attributes; payer PII only ever as ciphertext. */
export interface Order extends PaymentAttributes {
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
  /**
   * The payer as events show it (changes/snapshot.ts maskPayer), masked once at creation and kept in plaintext:
   * masked values are not PII, and the writer renders every event's snapshot from the stored item without a
   * kms:Decrypt per change (sweeps and the channel's notifications hold none).
   */
  payer_masked?: Payer;
  /** payer.locale, in plaintext (a language is no contact detail): the checkout sets it without opening the payer. */
  payer_locale?: PayerLocale;
  /** When the payer was erased on request (orders/erase.ts): the payer fields above are gone for good. */
  payer_erased_at?: string;
  expires_at: string;
  created_at: string;
  updated_at: string;
  closed_at?: string;
  close_reason?: 'merchant' | 'expired';
  /** 1 at creation, +1 on every change (changes/writer.ts): an event's data.object.version says which state it shows. */
  version: number;
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
    // Only on erased orders: `payer: null` alone would not tell "never given" from "erased on request".
    ...(order.payer_erased_at ? { payer_erased_at: order.payer_erased_at } : {}),
    metadata: order.metadata,
    notify_url: order.notify_url ?? null,
    return_url: order.return_url ?? null,
    checkout_url: `${baseUrl}/checkout/${order.id}`,
    expires_at: order.expires_at,
    closed_at: order.closed_at ?? null,
    close_reason: order.close_reason ?? null,
    created_at: order.created_at,
    updated_at: order.updated_at,
    // Orders written before versions existed read as version 0 until their next change.
    version: order.version ?? 0,
  };
}

export type ApiOrder = ReturnType<typeof toApi>;

/** The order with its payment attributes (the same item: payments read it under this name). */
export type PaymentOrder = Order;

/**
 * Stripe's `redirect_to_url`: a merchant who confirms server-side sends the payer to the hosted challenge, which
 * returns to `return_url` signed like any checkout. The channel's challenge id stays inside: only the page needs it.
 */
const redirectToUrl = (order: { checkout_url: string; return_url: string | null }) => ({
  type: 'redirect_to_url' as const,
  redirect_to_url: { url: `${order.checkout_url}/3ds`, return_url: order.return_url },
});

/** The order as the API shows it at `now`: an unpaid order past its expiry reads as closed (orders/order.ts `effective`). */
export function orderToApi(order: PaymentOrder, payer: Payer | undefined, baseUrl: string, now: Date) {
  return storedOrderToApi(effective(order, now), payer, baseUrl);
}

/** The order as stored, in the API's shape: what an event's data.object shows of the version it was written at. */
export function storedOrderToApi(order: PaymentOrder, payer: Payer | undefined, baseUrl: string) {
  const api = toApi(order, payer, baseUrl);
  return {
    ...api,
    amount_authorized: order.amount_authorized ?? 0,
    amount_captured: order.amount_captured ?? 0,
    payment_id: order.payment_id ?? null,
    payment_method_details: order.payment_method_details ?? null,
    last_payment_error: order.last_payment_error ?? null,
    next_action: order.next_action ? redirectToUrl(api) : null,
    paid_at: order.paid_at ?? null,
  };
}
export type ApiPaymentOrder = ReturnType<typeof orderToApi>;

