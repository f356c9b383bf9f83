import { InternalError, InvalidRequestError } from '../../commons/errors';
import { msg } from '../../commons/messages';
import { toMajorString } from '../../commons/money';
import { parseInput } from '../../http/validation';
import { captureTransfers, convertedCaptureTransfers, feeAt, feeOnConversion, refusalError } from '../../ledger';
import { requestOf } from '../../changes/writer';
import { transitionConflict } from '../../orders/order';
import { type Caller } from '../../orders/service';
import { orderChange } from '../../orders/subject';
import { type ApiPaymentOrder } from '../payment';
import { captureSchema } from '../schemas';
import { CHANNEL, type PaymentContext } from './context';

/** Capture: validate the amount → load a requires_capture order → the channel captures → persist (order.succeeded). */

/** POST /v1/orders/{id}/capture: captures `amount` (default all) of a requires_capture order; the rest is released. */
export async function capture(ctx: PaymentContext, caller: Caller, orderId: string, body: unknown = {}): Promise<ApiPaymentOrder> {
  const input = parseInput(captureSchema, body ?? {});
  const order = await ctx.loadOrder(caller, orderId);
  const authorized = order.amount_authorized ?? order.amount;
  const amount = input.amount ?? authorized;
  // A run of this request that died after its write: answer as it would have.
  if (caller.resumed && order.status === 'succeeded' && order.amount_captured === amount) return ctx.present(caller, order);
  if (order.status !== 'requires_capture' || !order.channel_ref || !order.payment_id) throw transitionConflict(order.id, order.status, 'succeeded');
  if (amount > authorized) {
    throw new InvalidRequestError(
      'amount_too_large',
      msg['amount_too_large.capture']({ amount, authorized: amount === authorized ? '' : `${authorized} (${toMajorString(authorized, order.currency)} ${order.currency})` }),
      { param: 'amount' },
    );
  }
  // Before the channel call: nothing that can fail may sit between the channel capturing and the write.
  const feeRate = order.fee_rate ?? (await ctx.feeRate(order));
  // A converted order: at the rates locked at confirm, on the converted amount, in the settlement currency.
  const transfers = order.fx
    ? convertedCaptureTransfers(ctx.ref(order), order.fx, { amount, fee: feeOnConversion(order.fx, amount, feeRate), authorized }, caller.now)
    : captureTransfers(ctx.ref(order), { amount, fee: feeAt(amount, feeRate), authorized }, caller.now);
  await ctx.channelOf(order.channel ?? CHANNEL).capture(order.channel_ref, amount);
  const result = await ctx.writer.write({
    objects: [orderChange(order, { ...order, status: 'succeeded', amount_captured: amount, amount_refundable: amount, paid_at: caller.now.toISOString() })],
    transfers,
    items: { attempt: ctx.repo.attemptUpdate(order.payment_id, { status: 'succeeded' }, caller.now) },
    request: requestOf(caller),
    now: caller.now,
    baseUrl: caller.baseUrl,
  });
  const after = await ctx.loadOrder(caller, orderId);
  if (!result.committed) {
    // A concurrent capture of the same amount already applied it: same answer.
    if (after.status === 'succeeded' && after.amount_captured === amount) return ctx.present(caller, after);
    if (result.refused === 'order' || result.refused === 'attempt') throw transitionConflict(order.id, after.status, 'succeeded');
    throw result.ledger ? refusalError(result.ledger, amount) : new InternalError('capture_not_applied', `refused by ${result.all.join(', ')}`);
  }
  return ctx.present(caller, after);
}
