import { InternalError } from '../../commons/errors';
import { ChannelResultMismatchError, type ChannelEvent } from '../../channels';
import { refusalError } from '../../ledger';
import { orderChange } from '../../orders/subject';
import { type ChannelOutcome } from '../outcome';
import { planOutcome } from './apply-outcome';
import { type ChannelEventOutcome, MAX_APPLY_ROUNDS, type PaymentContext, carriesAttempt } from './context';

/**
 * A verified channel notification: load the attempt and its order → decide (outcome.ts) → persist the change with
 * the notification's dedupe item and the attempt's sequence in the same transaction.
 */

/**
 * Applies a verified channel notification (the notify handler verified it with
 * `channel.parseNotification`). Idempotent: a redelivered event (same eventId) and a stale one (a
 * sequence at or below one already applied) change nothing. Every outcome means "acknowledge". An event for
 * another amount or currency than the attempt's is refused (ChannelResultMismatchError) and changes nothing.
 */
export async function applyChannelEvent(ctx: PaymentContext, event: ChannelEvent, now: Date = new Date()): Promise<ChannelEventOutcome> {
  const attempt = await ctx.repo.getAttempt(event.paymentId);
  if (!attempt) return { outcome: 'ignored', reason: 'unknown_payment' };
  if (!carriesAttempt(attempt, event, 'notification')) {
    throw new ChannelResultMismatchError(attempt.channel, 'result_mismatch', `Event ${event.eventId} of attempt ${attempt.id} is not for the attempt's amount and currency; refused.`);
  }
  const outcome: ChannelOutcome = {
    status: event.status,
    channelRef: event.channelRef,
    declineCode: event.declineCode,
    message: event.message,
    sequence: event.sequence,
  };
  for (let round = 0; round < MAX_APPLY_ROUNDS; round++) {
    const order = await ctx.repo.getOrder(attempt.merchant_id, attempt.order_id);
    if (!order) return { outcome: 'ignored', reason: 'unknown_payment' };
    const plan = await planOutcome(ctx, order, attempt.id, outcome, now);
    const result = await ctx.writer.write({
      objects: plan.after ? [orderChange(order, plan.after)] : [],
      transfers: plan.transfers,
      items: {
        channel_event: ctx.repo.eventPut(attempt.channel, event, now),
        attempt: ctx.repo.attemptUpdate(attempt.id, { ...plan.attempt, channel_ref: event.channelRef }, now, event.sequence),
        ...plan.items,
      },
      request: null,
      now,
    });
    if (result.committed) {
      return plan.after ? { outcome: 'applied', order_id: order.id, status: plan.after.status } : { outcome: 'recorded', order_id: order.id, status: order.status };
    }
    if (result.refused === 'channel_event') return { outcome: 'duplicate', order_id: order.id };
    if (result.refused === 'attempt') return { outcome: 'stale', order_id: order.id };
    if (result.refused === 'ledger' && result.ledger) throw refusalError(result.ledger);
    if (result.refused !== 'order') throw new InternalError('channel_event_not_applied', `Event ${event.eventId}: refused by ${result.all.join(', ')}`);
    // The order moved since we read it: decide again on its new state.
  }
  throw new InternalError('channel_event_contended', `Event ${event.eventId} lost ${MAX_APPLY_ROUNDS} races on order ${attempt.order_id}; the channel will resend it.`);
}
