import { newId } from '../../commons/ids';
import { InternalError } from '../../commons/errors';
import { seal } from '../../commons/crypto';
import { Secret } from '../../commons/secret';
import { cardBrand, last4 } from '../../channels/cards';
import { CardDeclinedError, ChannelRejectedError, ChannelUnavailableError, DECLINE_MESSAGES, type PaymentMethod } from '../../channels';
import { requestOf } from '../../changes/writer';
import { effective, transitionConflict } from '../../orders/order';
import { type Caller } from '../../orders/service';
import { CARD_DECLINE_LIMIT, cardCounter, cardVelocityExceeded, ORDER_DECLINE_LIMIT, orderAttemptsExhausted } from '../velocity';
import { orderChange } from '../../orders/subject';
import { fromAuthorize, type ChannelOutcome } from '../outcome';
import { type ApiPaymentOrder, type PaymentAttempt, type PaymentMethodDetails, type PaymentOrder } from '../payment';
import { parseConfirm, type ConfirmInput } from '../schemas';
import { apply } from './apply-outcome';
import { CHANNEL, type PaymentContext } from './context';

/**
 * POST /v1/orders/{id}/confirm (and the hosted checkout's submit): validate → load the order → decide (its status,
 * its decline limits) → persist the claim (requires_payment → processing, order.processing) → effects: the
 * channel's authorize, whose answer goes through the shared decide (outcome.ts) and apply-outcome.ts.
 */

/**
 * POST /v1/orders/{id}/confirm. Claims the order (requires_payment → processing, conditional), then
 * authorizes once with a new attempt id and applies the answer. A decline leaves the order payable
 * with `last_payment_error` and throws the 402 CardDeclinedError. An answer lost in transit is
 * queried; if the channel still cannot say, the order stays `processing` until a notification or
 * `syncPayment` settles it.
 */
export async function confirm(ctx: PaymentContext, caller: Caller, orderId: string, body: unknown): Promise<ApiPaymentOrder> {
  const input = parseConfirm(body);
  const order = await ctx.loadOrder(caller, orderId);
  const paymentId = caller.newId?.('pay') ?? newId('pay');
  // The attempt is this request's own: a run of it died after claiming the order. Finish that attempt.
  if (order.payment_id === paymentId) return resumeConfirm(ctx, caller, order, paymentId, input);
  const current = effective(order, caller.now);
  if (current.status !== 'requires_payment') throw transitionConflict(order.id, current.status, 'processing');
  if ((order.declined_attempts ?? 0) >= ORDER_DECLINE_LIMIT) throw orderAttemptsExhausted(order.id);

  // The rates in force when the payer pays (the fee's and, for a converted payment, the exchange's): whichever path
  // captures later charges and converts at these, so nothing can fail between the channel's capture and the write.
  // No exchange rate in force refuses the confirm here, before anything is written or sent to the channel.
  const { feeRate, fx } = await ctx.lockRates(order, input.payment_method.type, caller.now);
  const { method, details, cardCiphertext, velocity } = await paymentMethod(ctx, input, order, caller.now);
  const attempt: PaymentAttempt = {
    id: paymentId,
    order_id: order.id,
    merchant_id: order.merchant_id,
    channel: CHANNEL,
    status: 'processing',
    amount: order.amount,
    currency: order.currency,
    capture: order.capture_method === 'automatic',
    method: input.payment_method.type,
    last_sequence: 0,
    created_at: caller.now.toISOString(),
    updated_at: caller.now.toISOString(),
  };
  // Claim: exactly one confirm of an order gets past this write (its version condition), and only while the card
  // is below its decline limit (velocity.ts); the order's limit and status were decided on this version.
  const claim = await ctx.writer.write(
    {
      objects: [
        orderChange(order, {
          ...order,
          status: 'processing',
          payment_id: paymentId,
          channel: CHANNEL,
          payment_method_details: details,
          fee_rate: feeRate,
          fx,
          fx_refunded: fx ? 0 : undefined,
          // The checkout's language becomes the receipts' language, unless the merchant sent payer.locale (or the
          // payer was erased: orders/erase.ts).
          payer_locale: order.payer_erased_at ? undefined : (order.payer_locale ?? caller.payerLocale),
          card_ciphertext: cardCiphertext,
          card_velocity: velocity?.pk,
          last_payment_error: undefined,
          next_action: undefined,
          channel_ref: undefined,
        }),
      ],
      items: { attempt: ctx.repo.attemptPut(attempt), ...(velocity ? { velocity: ctx.repo.cardSlotTake(velocity, CARD_DECLINE_LIMIT) } : {}) },
      request: requestOf(caller),
      now: caller.now,
      baseUrl: caller.baseUrl,
    },
    { maxAttempts: 30 }, // a card under attack makes its velocity counter a hot item
  );
  if (!claim.committed) {
    if (claim.refused === 'velocity') throw cardVelocityExceeded();
    if (claim.refused !== 'order') throw new InternalError('confirm_claim_failed', `Claiming order ${order.id} failed: refused by ${claim.all.join(', ')}`);
    const now = await ctx.loadOrder(caller, orderId);
    const status = effective(now, caller.now).status;
    if (status === 'requires_payment' && (now.declined_attempts ?? 0) >= ORDER_DECLINE_LIMIT) throw orderAttemptsExhausted(order.id);
    throw transitionConflict(order.id, status === 'requires_payment' ? 'processing' : status, 'processing');
  }

  return authorize(ctx, caller, order, paymentId, method);
}

/**
 * Resumes a confirm whose run died after claiming the order for `paymentId`: the channel is asked
 * first, since the dead run may have reached it; only an attempt the channel never saw is sent (again,
 * with the same paymentId, on which the channel is idempotent). A settled attempt is answered as the
 * first run would have: the order, or its decline.
 */
async function resumeConfirm(ctx: PaymentContext, caller: Caller, order: PaymentOrder, paymentId: string, input: ConfirmInput): Promise<ApiPaymentOrder> {
  if (order.status === 'processing') {
    const outcome = await ctx.queryQuietly(ctx.channelOf(order.channel ?? CHANNEL), { id: paymentId, amount: order.amount, currency: order.currency });
    if (!outcome) return authorize(ctx, caller, order, paymentId, (await paymentMethod(ctx, input, order, caller.now)).method);
    return settleConfirm(ctx, caller, order.id, paymentId, outcome);
  }
  const declined = order.last_payment_error;
  if (order.status === 'requires_payment' && declined?.payment_id === paymentId) {
    throw CardDeclinedError.of(CHANNEL, { declineCode: declined.decline_code, message: declined.message });
  }
  return ctx.present(caller, order);
}

/** Sends a claimed attempt to the channel and applies its answer (confirm's second half). */
async function authorize(ctx: PaymentContext, caller: Caller, order: PaymentOrder, paymentId: string, method: PaymentMethod): Promise<ApiPaymentOrder> {
  const ch = ctx.channelOf(CHANNEL);
  let outcome: ChannelOutcome | undefined;
  try {
    const result = await ch.authorize({
      paymentId,
      amount: order.amount,
      currency: order.currency,
      capture: order.capture_method === 'automatic',
      method,
      notifyUrl: `${caller.baseUrl}/channels/${CHANNEL}/notify`,
      returnUrl: order.return_url,
    });
    outcome = fromAuthorize(result);
  } catch (error) {
    if (!(error instanceof ChannelUnavailableError)) {
      if (error instanceof ChannelRejectedError) {
        // The channel refused the request and did nothing: the order is payable again.
        await apply(ctx, caller.merchantId, order.id, paymentId, { status: 'failed', channelRef: '', declineCode: 'processing_error', message: error.message }, caller);
      }
      throw error;
    }
    if (error.outcomeUnknown) outcome = await ctx.queryQuietly(ch, { id: paymentId, amount: order.amount, currency: order.currency });
    else {
      await apply(ctx, caller.merchantId, order.id, paymentId, { status: 'failed', channelRef: '', declineCode: 'processing_error', message: DECLINE_MESSAGES.processing_error }, caller);
      throw error;
    }
  }
  if (!outcome) return ctx.present(caller, await ctx.loadOrder(caller, order.id)); // still unknown: stays processing
  return settleConfirm(ctx, caller, order.id, paymentId, outcome);
}

async function settleConfirm(ctx: PaymentContext, caller: Caller, orderId: string, paymentId: string, outcome: ChannelOutcome): Promise<ApiPaymentOrder> {
  const applied = await apply(ctx, caller.merchantId, orderId, paymentId, outcome, caller);
  if (outcome.status === 'failed' && applied.last_payment_error?.payment_id === paymentId) {
    throw CardDeclinedError.of(CHANNEL, { declineCode: outcome.declineCode, message: outcome.message });
  }
  return ctx.present(caller, applied);
}

async function paymentMethod(ctx: PaymentContext, 
  input: ConfirmInput,
  order: PaymentOrder,
  now: Date,
): Promise<{ method: PaymentMethod; details: PaymentMethodDetails; cardCiphertext?: Uint8Array; velocity?: { pk: string; ttl: number } }> {
  const pm = input.payment_method;
  if (pm.type === 'wallet') return { method: { type: 'wallet' }, details: { type: 'wallet' } };
  const pan = new Secret(pm.card.number);
  const fingerprints = await ctx.deps.fingerprinter.fingerprint(pan, order.merchant_id);
  const card = {
    brand: cardBrand(pan.reveal()),
    last4: last4(pan.reveal()),
    exp_month: pm.card.exp_month,
    exp_year: pm.card.exp_year,
    fingerprint: fingerprints.merchant,
  };
  const cardCiphertext = await seal(new Secret(card), { purpose: 'card', merchantId: order.merchant_id, recordId: order.id });
  return {
    method: { type: 'card', card: new Secret({ number: pm.card.number, exp_month: pm.card.exp_month, exp_year: pm.card.exp_year, cvc: pm.card.cvc }) },
    details: { type: 'card', card },
    cardCiphertext,
    velocity: ctx.channelOf(CHANNEL).publishedTestCards?.has(pm.card.number) ? undefined : cardCounter(fingerprints.platform, now),
  };
}
