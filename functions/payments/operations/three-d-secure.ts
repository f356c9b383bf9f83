import { InvalidRequestError } from '../../commons/errors';
import { msg } from '../../commons/messages';
import { transitionConflict } from '../../orders/order';
import { type Caller } from '../../orders/service';
import { fromAuthorize } from '../outcome';
import { type ApiPaymentOrder } from '../payment';
import { apply } from './apply-outcome';
import { CHANNEL, type PaymentContext } from './context';

/** 3-D Secure completion: validate the outcome → load a requires_action order → the channel's answer → apply-outcome.ts. */

/** Finishes a `requires_action` order once the payer passed or failed the 3-D Secure challenge. */
export async function completeThreeDSecure(ctx: PaymentContext, caller: Caller, orderId: string, outcome: 'approve' | 'fail'): Promise<ApiPaymentOrder> {
  if (outcome !== 'approve' && outcome !== 'fail') {
    throw new InvalidRequestError('parameter_invalid', msg['parameter_invalid.outcome']({ got: String(JSON.stringify(outcome)) }), { param: 'outcome' });
  }
  const order = await ctx.loadOrder(caller, orderId);
  if (order.status !== 'requires_action' || !order.next_action || !order.payment_id) throw transitionConflict(order.id, order.status, 'processing');
  const result = await ctx.channelOf(order.channel ?? CHANNEL).completeAction(order.payment_id, order.next_action.challenge_id, outcome);
  const applied = await apply(ctx, caller.merchantId, order.id, order.payment_id, fromAuthorize(result), caller);
  return ctx.present(caller, applied);
}
