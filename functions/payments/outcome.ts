import { CardDeclinedError, DECLINE_MESSAGES, type AuthorizeResult } from '../channels';
import { authorizationTransfer, captureTransfers, convertedAuthorizationTransfers, convertedCaptureTransfers, feeAt, feeOnConversion, type PaymentFeeRate, type PaymentRef, type Transfer } from '../ledger';
import type { LastPaymentError, PaymentAttempt, PaymentOrder } from './payment';

/**
 * The shared decide of every path that learns a channel's answer (confirm, 3-D Secure completion, a notification,
 * a query by the reconciler): what an outcome of attempt `paymentId` does to an order in its current state. Pure:
 * the callers load, then persist what this returns through the writer (changes/writer.ts).
 */

/** The channel's answer, from authorize / completeAction / query / a notification. */
export interface ChannelOutcome {
  status: AuthorizeResult['status'] | 'canceled';
  channelRef: string;
  declineCode?: AuthorizeResult['declineCode'];
  message?: string;
  challengeId?: string;
  sequence?: number;
}

export interface OutcomeDecision {
  /** The order after the outcome; undefined: the order does not move (only the attempt records the outcome). */
  after?: PaymentOrder;
  transfers: Transfer[];
  /** The attempt's fields the outcome sets. */
  attempt: Partial<PaymentAttempt>;
  /** The card's velocity slot to give back (velocity.ts): a result that is not a decline. */
  releaseSlot?: string;
}

export interface OutcomeContext {
  now: Date;
  /** The ledger's view of the order's payment (accounts). */
  ref: PaymentRef;
  /** The rate a capture charges: the attempt's fee_rate, or the merchant's current one for older orders; needed for `succeeded`. */
  feeRate?: PaymentFeeRate;
  channel: PaymentAttempt['channel'];
}

export function decideOutcome(order: PaymentOrder, paymentId: string, o: ChannelOutcome, ctx: OutcomeContext): OutcomeDecision {
  const none: OutcomeDecision = { transfers: [], attempt: attemptStatus(o) };
  // Only the current attempt of an order still waiting for its result moves it.
  if (order.payment_id !== paymentId || !['processing', 'requires_action'].includes(order.status)) return none;
  // A final result settles the card's velocity slot: a decline keeps it (counted), anything else gives it back.
  const isDecline = o.status === 'failed' && o.declineCode !== 'processing_error';
  const releaseSlot = order.card_velocity && !isDecline ? order.card_velocity : undefined;
  const settled = { card_velocity: undefined, next_action: undefined };
  switch (o.status) {
    case 'processing':
      return none;
    case 'requires_action':
      if (order.status === 'requires_action') return none;
      return { ...none, after: { ...order, status: 'requires_action', channel_ref: o.channelRef, next_action: { type: 'three_d_secure', challenge_id: o.challengeId ?? '' } } };
    case 'requires_capture':
      return {
        ...none,
        after: { ...order, ...settled, status: 'requires_capture', channel_ref: o.channelRef, amount_authorized: order.amount },
        transfers: order.fx ? convertedAuthorizationTransfers(ctx.ref, order.fx, order.amount, ctx.now) : [authorizationTransfer(ctx.ref, order.amount, ctx.now)],
        releaseSlot,
      };
    case 'succeeded':
      if (!ctx.feeRate) throw new Error(`decideOutcome: a success of order ${order.id} needs its fee rate`);
      return {
        ...none,
        after: {
          ...order,
          ...settled,
          status: 'succeeded',
          channel_ref: o.channelRef,
          amount_authorized: order.amount,
          amount_captured: order.amount,
          amount_refundable: order.amount,
          paid_at: ctx.now.toISOString(),
        },
        transfers: order.fx
          ? convertedCaptureTransfers(ctx.ref, order.fx, { amount: order.amount, fee: feeOnConversion(order.fx, order.amount, ctx.feeRate) }, ctx.now)
          : captureTransfers(ctx.ref, { amount: order.amount, fee: feeAt(order.amount, ctx.feeRate) }, ctx.now),
        releaseSlot,
      };
    case 'failed':
    case 'canceled': {
      const declineCode = o.declineCode ?? 'card_declined';
      const declined = new CardDeclinedError(ctx.channel, declineCode, o.message ?? DECLINE_MESSAGES[declineCode]);
      const error: LastPaymentError = {
        type: declineCode === 'processing_error' ? 'api_error' : 'card_error',
        code: declined.code,
        decline_code: declineCode,
        message: declined.message,
        payment_id: paymentId,
      };
      return {
        ...none,
        after: {
          ...order,
          ...settled,
          status: 'requires_payment',
          last_payment_error: error,
          channel_ref: undefined,
          ...(isDecline ? { declined_attempts: (order.declined_attempts ?? 0) + 1 } : {}),
        },
        releaseSlot,
      };
    }
  }
}

export function fromAuthorize(r: AuthorizeResult): ChannelOutcome {
  return { status: r.status, channelRef: r.channelRef, declineCode: r.declineCode, message: r.message, challengeId: r.action?.challengeId };
}

function attemptStatus(o: ChannelOutcome): Partial<PaymentAttempt> {
  return { status: o.status === 'failed' ? 'failed' : o.status, ...(o.declineCode ? { decline_code: o.declineCode } : {}) };
}
