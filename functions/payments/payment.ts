import type { ChannelId, DeclineCode } from '../channels';
import type { PaymentFeeRate } from '../ledger';
import { effective, toApi, type Order, type Payer } from '../orders/order';

/**
 * What payments add to the stored order item (pk ORDER#<id>, sk ORDER), and the items payments own.
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

/** The order item with the payment attributes (all absent until the first confirm). */
export interface PaymentOrder extends Order {
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
  /** Declines of this order's attempts (velocity.ts): at ORDER_DECLINE_LIMIT it takes no more. */
  declined_attempts?: number;
  /** The card velocity counter (pk) whose slot the current attempt holds until its result; never shown. */
  card_velocity?: string;
}

export type PaymentStatus = 'processing' | 'requires_action' | 'requires_capture' | 'succeeded' | 'failed' | 'canceled';

/** One payment attempt: pk PAYMENT#<pay_id>, sk PAYMENT. Maps the channel's paymentId back to its order. */
export interface PaymentAttempt {
  id: string;
  order_id: string;
  merchant_id: string;
  channel: ChannelId;
  channel_ref?: string;
  status: PaymentStatus;
  amount: number;
  currency: string;
  capture: boolean;
  method: 'card' | 'wallet';
  decline_code?: DeclineCode;
  /** The highest channel sequence applied (events with a sequence ≤ this are stale). */
  last_sequence: number;
  created_at: string;
  updated_at: string;
}

export type RefundStatus = 'pending' | 'succeeded' | 'failed';

/** A refund: pk REFUND#<re_id>, sk REFUND; gsi1 MERCHANT#<mch> / REFUND#<order>#<created_at>#<re_id>. */
export interface Refund {
  id: string;
  order_id: string;
  merchant_id: string;
  payment_id: string;
  amount: number;
  currency: string;
  status: RefundStatus;
  reason?: RefundReason;
  /** The channel's id for the refund, once it answered. */
  channel_refund_ref?: string;
  failure_reason?: string;
  created_at: string;
  updated_at: string;
  /** 1 at creation, +1 on every change (changes/writer.ts), as an order's. */
  version: number;
}

export const REFUND_REASONS = ['duplicate', 'fraudulent', 'requested_by_customer'] as const;
export type RefundReason = (typeof REFUND_REASONS)[number];

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

export function refundToApi(refund: Refund) {
  return {
    id: refund.id,
    object: 'refund' as const,
    order_id: refund.order_id,
    amount: refund.amount,
    currency: refund.currency,
    status: refund.status,
    reason: refund.reason ?? null,
    failure_reason: refund.failure_reason ?? null,
    created_at: refund.created_at,
    version: refund.version ?? 0,
  };
}
export type ApiRefund = ReturnType<typeof refundToApi>;
