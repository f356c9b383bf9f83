import { InternalError, NotFoundError } from '../../commons/errors';
import { refusalError } from '../../ledger';
import { requestOf, type Change } from '../../changes/writer';
import { type Caller } from '../../orders/service';
import { orderChange, writtenOrder } from '../../orders/subject';
import { decideOutcome, type ChannelOutcome } from '../outcome';
import { type PaymentOrder } from '../payment';
import { CHANNEL, MAX_APPLY_ROUNDS, type PaymentContext } from './context';

/**
 * Persists a channel outcome of an attempt: load the order → decide (outcome.ts, pure) → write through the writer
 * with the attempt's update and the card's velocity slot; when the order moved meanwhile, load and decide again.
 * Shared by confirm, 3-D Secure completion and the reconciler's query.
 */

/**
 * Applies a channel outcome of attempt `paymentId` to its order: decides the transition (plan) and
 * writes it with its ledger transfers; when the order moved meanwhile, decides again. Returns the
 * order as stored afterwards.
 */
export async function apply(ctx: PaymentContext, merchantId: string, orderId: string, paymentId: string, outcome: ChannelOutcome, by: Caller | null = null): Promise<PaymentOrder> {
  for (let round = 0; round < MAX_APPLY_ROUNDS; round++) {
    const now = new Date();
    const order = await ctx.repo.getOrder(merchantId, orderId);
    if (!order) throw new NotFoundError('order', orderId);
    const plan = await planOutcome(ctx, order, paymentId, outcome, now);
    if (!plan.after) {
      if (outcome.channelRef) await ctx.repo.send(ctx.repo.attemptUpdate(paymentId, { channel_ref: outcome.channelRef }, now));
      return order;
    }
    const result = await ctx.writer.write({
      objects: [orderChange(order, plan.after)],
      transfers: plan.transfers,
      items: { attempt: ctx.repo.attemptUpdate(paymentId, { ...plan.attempt, ...(outcome.channelRef ? { channel_ref: outcome.channelRef } : {}) }, now, outcome.sequence), ...plan.items },
      // The request that learnt the answer (confirm, 3-D Secure) caused the change; a query of the reconciler's, none.
      request: by && requestOf(by),
      now,
      baseUrl: by?.baseUrl,
    });
    if (result.committed) return writtenOrder(result);
    if (result.refused === 'attempt') return (await ctx.repo.getOrder(merchantId, orderId))!; // a newer result already applied
    if (result.refused !== 'order') throw result.ledger ? refusalError(result.ledger) : new InternalError('payment_not_applied', `refused by ${result.all.join(', ')}`);
  }
  throw new InternalError('payment_contended', `Applying attempt ${paymentId} lost ${MAX_APPLY_ROUNDS} races on order ${orderId}.`);
}

/** decideOutcome (outcome.ts) with what it needs loaded: the fee rate, the ledger ref, the velocity slot's item. */
export async function planOutcome(ctx: PaymentContext, order: PaymentOrder, paymentId: string, o: ChannelOutcome, now: Date) {
  const needsRate = order.payment_id === paymentId && o.status === 'succeeded' && !order.fee_rate;
  const feeRate = order.fee_rate ?? (needsRate ? await ctx.feeRate(order) : undefined);
  const decision = decideOutcome(order, paymentId, o, { now, ref: ctx.ref(order), feeRate, channel: order.channel ?? CHANNEL });
  const items: Change['items'] = decision.releaseSlot ? { velocity: ctx.repo.cardSlotRelease(decision.releaseSlot, now) } : {};
  return { ...decision, items };
}
