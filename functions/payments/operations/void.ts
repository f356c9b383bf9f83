import { InternalError } from '../../commons/errors';
import { convertedVoidTransfers, refusalError, voidTransfer } from '../../ledger';
import { requestOf } from '../../changes/writer';
import { effective, transitionConflict } from '../../orders/order';
import { type Caller } from '../../orders/service';
import { orderChange } from '../../orders/subject';
import { type ApiPaymentOrder, type PaymentOrder } from '../payment';
import { CHANNEL, type PaymentContext } from './context';

/** Close and void: an authorization or a 3-D Secure attempt is voided at the channel, then the order closes (order.closed). */

/**
 * POST /v1/orders/{id}/close, the one place that decides how an order closes: an authorization
 * (`requires_capture`) or a 3-D Secure attempt (`requires_action`) is voided (`voidAuthorization`); an
 * unpaid order is closed by the order rules (`OrderService.closeUnpaid`); a closed one is returned again.
 */
export async function close(ctx: PaymentContext, caller: Caller, orderId: string): Promise<ApiPaymentOrder> {
  const order = await ctx.loadOrder(caller, orderId);
  if (order.status === 'requires_capture' || order.status === 'requires_action') return voidAuthorization(ctx, caller, orderId);
  return ctx.present(caller, (await ctx.orders.closeUnpaid(caller, orderId)) as PaymentOrder);
}

/**
 * Cancels the payment of an order before money moved: a requires_capture authorization is voided
 * at the channel and released in the ledger; a requires_action attempt is abandoned. The order is
 * closed. `close` calls this for those two statuses.
 */
export async function voidAuthorization(ctx: PaymentContext, caller: Caller, orderId: string): Promise<ApiPaymentOrder> {
  const order = await ctx.loadOrder(caller, orderId);
  if (order.status === 'closed') return ctx.present(caller, order);
  if ((order.status !== 'requires_capture' && order.status !== 'requires_action') || !order.payment_id) {
    throw transitionConflict(order.id, effective(order, caller.now).status, 'closed');
  }
  const ch = ctx.channelOf(order.channel ?? CHANNEL);
  if (order.channel_ref) await ch.void(order.channel_ref);
  const voids = order.status === 'requires_capture';
  const authorized = order.amount_authorized ?? order.amount;
  const result = await ctx.writer.write({
    objects: [orderChange(order, { ...order, status: 'closed', closed_at: caller.now.toISOString(), close_reason: 'merchant', next_action: undefined })],
    transfers: !voids ? [] : order.fx ? convertedVoidTransfers(ctx.ref(order), order.fx, authorized, caller.now) : [voidTransfer(ctx.ref(order), authorized, caller.now)],
    items: { attempt: ctx.repo.attemptUpdate(order.payment_id, { status: 'canceled' }, caller.now) },
    request: requestOf(caller),
    now: caller.now,
    baseUrl: caller.baseUrl,
  });
  const after = await ctx.loadOrder(caller, orderId);
  if (!result.committed && after.status !== 'closed') {
    if (result.refused === 'order' || result.refused === 'attempt') throw transitionConflict(order.id, after.status, 'closed');
    throw result.ledger ? refusalError(result.ledger) : new InternalError('void_not_applied', `refused by ${result.all.join(', ')}`);
  }
  return ctx.present(caller, after);
}
