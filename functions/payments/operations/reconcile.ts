import { type Caller } from '../../orders/service';
import { type ApiPaymentOrder, type PaymentOrder } from '../payment';
import { INFLIGHT_SHARDS, type InFlightItem } from '../repository';
import { apply } from './apply-outcome';
import { retryRefund } from './refund';
import { CHANNEL, IN_FLIGHT, type PaymentContext, RECONCILE_GRACE_MS, type ReconcileSummary } from './context';

/**
 * Reconciliation: the scheduled sweep of the in-flight index, and the query of one order's attempt (syncPayment).
 * The channel's answers go through the same decide and writes as a callback's (apply-outcome.ts, refund.ts).
 */

/**
 * Asks the channel about the order's current attempt and applies what it says: the "lost answer"
 * path for orders left `processing` (or `requires_action`). Safe to call any time.
 */
export async function syncPayment(ctx: PaymentContext, caller: Caller, orderId: string): Promise<ApiPaymentOrder> {
  return ctx.present(caller, await sync(ctx, await ctx.loadOrder(caller, orderId)));
}

async function sync(ctx: PaymentContext, order: PaymentOrder): Promise<PaymentOrder> {
  if (!order.payment_id || !IN_FLIGHT.includes(order.status)) return order;
  // The attempt's amount and currency are the order's: confirm copies them, and an order's never change.
  const outcome = await ctx.queryQuietly(ctx.channelOf(order.channel ?? CHANNEL), { id: order.payment_id, amount: order.amount, currency: order.currency });
  if (!outcome || outcome.status === 'processing') return order;
  return apply(ctx, order.merchant_id, order.id, order.payment_id, outcome);
}

/**
 * The scheduled sweep (ReconcilePayments): orders left `processing` / `requires_action` and refunds left
 * `pending` for longer than `graceMs` (callbacks usually come first) are settled by asking the channel, and
 * its answer goes through the same conditional writes as a callback's, so a callback racing the sweep
 * moves money once. What the channel still cannot settle waits for the next run. One item's failure does
 * not stop the others: it is returned, and the item stays in the index.
 */
export async function reconcileDue(ctx: PaymentContext, now: Date, { graceMs = RECONCILE_GRACE_MS, perShard = 25 } = {}): Promise<ReconcileSummary> {
  const summary: ReconcileSummary = { settled: 0, unresolved: 0, failed: [] };
  for (let shard = 0; shard < INFLIGHT_SHARDS; shard++) {
    const due = await ctx.repo.dueForReconciliation(shard, new Date(now.getTime() - graceMs), perShard);
    const results = await Promise.allSettled(due.map((item) => reconcile(ctx, item, now)));
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') summary[r.value]++;
      else summary.failed.push({ id: due[i]!.id, error: r.reason instanceof Error ? `${r.reason.name}: ${r.reason.message}` : String(r.reason) });
    });
  }
  return summary;
}

async function reconcile(ctx: PaymentContext, item: InFlightItem, now: Date): Promise<'settled' | 'unresolved'> {
  let inFlight: boolean;
  if (item.type === 'order') {
    const order = await ctx.repo.getOrder(item.merchant_id, item.id);
    inFlight = !!order && IN_FLIGHT.includes((await sync(ctx, order)).status);
  } else {
    const refund = await ctx.repo.getRefund(item.merchant_id, item.id);
    const order = refund?.status === 'pending' ? await ctx.repo.getOrder(item.merchant_id, refund.order_id) : undefined;
    inFlight = !!refund && !!order && (await retryRefund(ctx, order, refund, now)).status === 'pending';
  }
  if (inFlight) await ctx.repo.requeue(item, now);
  return inFlight ? 'unresolved' : 'settled';
}
