import type { ChannelId, DeclineCode } from '../channels';

/**
 * The order item's payment attributes and its API shape live with the order (orders/order.ts): one item, one
 * model, which the order operations and the writer use without importing payments. Re-exported here for the
 * payment code that reads them.
 */
export {
  orderToApi,
  storedOrderToApi,
  type ApiPaymentOrder,
  type CardSummary,
  type LastPaymentError,
  type NextAction,
  type PaymentMethodDetails,
  type PaymentOrder,
} from '../orders/order';

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
  /** A refund of a converted payment: what it takes from the merchant in its settlement currency (fx/convert.ts refundReversal). */
  settlement_amount?: number;
  settlement_currency?: string;
  created_at: string;
  updated_at: string;
  /** 1 at creation, +1 on every change (changes/writer.ts), as an order's. */
  version: number;
}

export const REFUND_REASONS = ['duplicate', 'fraudulent', 'requested_by_customer'] as const;
export type RefundReason = (typeof REFUND_REASONS)[number];


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
