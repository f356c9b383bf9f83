import { setTimeout as sleep } from 'node:timers/promises';
import { msg } from '../../commons/messages';
import { newId } from '../../commons/ids';
import { ConflictError, ContendedError, InternalError, InvalidRequestError, NotFoundError } from '../../commons/errors';
import { toMajorString } from '../../commons/money';
import { parseInput } from '../../http/validation';
import { ChannelRejectedError, ChannelUnavailableError } from '../../channels';
import { convertedRefundTransfers, refundTransfer, refusalError, type Transfer } from '../../ledger';
import { refundReversal } from '../../fx';
import { requestOf, type RequestContext } from '../../changes/writer';
import { effective } from '../../orders/order';
import { type Caller } from '../../orders/service';
import { refundChange, writtenRefund } from '../refund-subject';
import { orderChange } from '../../orders/subject';
import { refundToApi, type ApiRefund, type PaymentOrder, type Refund } from '../payment';
import { refundSchema } from '../schemas';
import { CHANNEL, MAX_REFUND_ROUNDS, type PaymentContext } from './context';

/**
 * Refunds: validate → load the order → decide the amount (refundable) → persist the reservation (refund.created +
 * order.refunded, the ledger's refund transfer) → effects: the channel refunds; its refusal is compensated
 * (refund.failed + order.refunded, a reversal transfer).
 */

/**
 * POST /v1/refunds. Reserves the amount on the order (condition: amount_refundable ≥ amount) in
 * the same transaction as the refund item and the ledger's refund transfer, then asks the channel.
 * A channel refusal compensates (the reservation and the transfer are reversed, the refund is
 * `failed`); no answer leaves the refund `pending` (the channel is idempotent on the refund id).
 */
export async function refund(ctx: PaymentContext, caller: Caller, body: unknown): Promise<ApiRefund> {
  const input = parseInput(refundSchema, body);
  let order = await ctx.loadOrder(caller, input.order_id, 'order_id');
  const refundId = caller.newId?.('re') ?? newId('re');
  // The run that died may have reserved this refund already: finish that one, never start a second.
  const earlier = caller.resumed ? await ctx.repo.getRefund(caller.merchantId, refundId) : undefined;
  if (earlier) return refundToApi(await resumeRefund(ctx, order, earlier, caller.now));

  // Reserve: the order's amount_refunded grows in the same transaction as the refund and its ledger transfer,
  // decided on the order's version as read. A concurrent refund of the same order wins the version: read
  // it again and decide again (its refund may have used up what was left).
  for (let round = 0; round < MAX_REFUND_ROUNDS; round++) {
    const amount = refundable(order, input.amount, caller.now);
    const refund: Refund = {
      id: refundId,
      order_id: order.id,
      merchant_id: order.merchant_id,
      payment_id: order.payment_id!,
      amount,
      currency: order.currency,
      status: 'pending',
      reason: input.reason,
      // Converted: at the rate locked at confirm, cumulatively, so the order's refunds add up to what was converted.
      ...(order.fx
        ? { settlement_currency: order.fx.settlement_currency, settlement_amount: refundReversal(order.fx, order.amount_refunded + amount, order.fx_refunded ?? 0) }
        : {}),
      created_at: caller.now.toISOString(),
      updated_at: caller.now.toISOString(),
      version: 1,
    };
    const transfers = refundTransfers(ctx, order, refund, caller.now);
    const reserved = await ctx.writer.write(
      {
        objects: [
          orderChange(order, {
            ...order,
            amount_refunded: order.amount_refunded + amount,
            amount_refundable: (order.amount_refundable ?? 0) - amount,
            ...(order.fx ? { fx_refunded: (order.fx_refunded ?? 0) + refund.settlement_amount! } : {}),
          }),
          refundChange(undefined, refund),
        ],
        transfers,
        request: requestOf(caller),
        now: caller.now,
        baseUrl: caller.baseUrl,
      },
      { maxAttempts: 30 },
    );
    if (reserved.committed) return refundToApi(await askRefund(ctx, order, writtenRefund(reserved), transfers, caller.now, requestOf(caller)));
    if (reserved.refused === 'ledger' && reserved.ledger) throw refusalError(reserved.ledger, amount);
    if (reserved.refused !== 'order') break;
    await sleep(Math.random() * Math.min(200, 5 * 2 ** round)); // the racers spread out instead of colliding again
    order = await ctx.loadOrder(caller, order.id, 'order_id');
  }
  throw new ContendedError('refund_contended', msg.refund_contended({ id: order.id }), { param: 'order_id' });
}

/**
 * Asks the channel for a reserved refund and applies the answer: succeeded → `succeeded`; refused →
 * compensated (reverseRefund) and the error thrown; no answer, or `pending` → stays `pending` (nothing changed,
 * so nothing is written: the channel's refund ref comes again with its final answer). Safe to repeat: the
 * channel is idempotent on the refund id, and each write is conditioned on the refund's version.
 */
async function askRefund(ctx: PaymentContext, order: PaymentOrder, refund: Refund, transfers: Transfer[], now: Date, request: RequestContext | null = null): Promise<Refund> {
  try {
    const result = await ctx.channelOf(order.channel ?? CHANNEL).refund(order.channel_ref!, refund.id, refund.amount);
    if (result.status === 'failed') throw new ChannelRejectedError(CHANNEL, 'refund_failed', result.message ?? 'The channel declined the refund.');
    if (result.status !== 'succeeded') return refund;
    const written = await ctx.writer.write({
      objects: [refundChange(refund, { ...refund, status: 'succeeded', channel_refund_ref: result.refundRef })],
      request,
      now,
    });
    if (written.committed) return writtenRefund(written);
    // Another path (the reconciler, a retry) settled it first.
    return (await ctx.repo.getRefund(refund.merchant_id, refund.id)) ?? refund;
  } catch (error) {
    if (error instanceof ChannelUnavailableError) return refund; // pending: retry/reconcile with the same refund id
    if (error instanceof ChannelRejectedError) {
      await reverseRefund(ctx, order, refund, transfers, error.message, now, request);
    }
    throw error;
  }
}

/**
 * A refund a dead run reserved, finished as its first run would have: a pending one asks the channel
 * (idempotent on the refund id: a refund the channel made is answered, not made again); a settled one is
 * answered as it is, a failed one with the channel's refusal.
 */
async function resumeRefund(ctx: PaymentContext, order: PaymentOrder, refund: Refund, now: Date): Promise<Refund> {
  if (refund.status === 'failed') throw new ChannelRejectedError(CHANNEL, 'refund_failed', refund.failure_reason ?? 'The channel declined the refund.');
  if (refund.status !== 'pending') return refund;
  return askAgain(ctx, order, refund, now);
}

/** The reconciler's retry of a `pending` refund: a refusal is compensated, then reported as `failed`. */
export async function retryRefund(ctx: PaymentContext, order: PaymentOrder, refund: Refund, now: Date): Promise<Refund> {
  try {
    return await askAgain(ctx, order, refund, now);
  } catch (error) {
    if (error instanceof ChannelRejectedError) return { ...refund, status: 'failed' };
    throw error;
  }
}

/** askRefund for a refund reserved earlier: the same accounts and amounts as the reservation's transfers, so a reversal mirrors them. */
function askAgain(ctx: PaymentContext, order: PaymentOrder, refund: Refund, now: Date): Promise<Refund> {
  return askRefund(ctx, order, refund, refundTransfers(ctx, order, refund, now), now);
}

/** A refund's transfers: one, or for a converted payment both legs (ledger/conversion.ts), from what the refund item records. */
function refundTransfers(ctx: PaymentContext, order: PaymentOrder, refund: Refund, now: Date): Transfer[] {
  if (!order.fx) return [refundTransfer(ctx.ref(order), { refund_id: refund.id, amount: refund.amount }, now)];
  return convertedRefundTransfers(ctx.ref(order), order.fx, { refund_id: refund.id, amount: refund.amount, settlement_amount: refund.settlement_amount ?? 0 }, now);
}

/**
 * The compensation of a refund the channel refused: reservation, transfer and refund reversed together (refund
 * `failed`, the order's amount_refunded back down: refund.failed and order.refunded). The order is read again:
 * other refunds may have changed it since this one was reserved.
 */
async function reverseRefund(ctx: PaymentContext, order: PaymentOrder, refund: Refund, transfers: Transfer[], why: string, now: Date, request: RequestContext | null): Promise<void> {
  const reversals: Transfer[] = transfers.map((t, i) => ({ ...t, id: `tr_${refund.id}_reversal${i === 0 ? '' : '_fx'}`, debit: t.credit, credit: t.debit, kind: 'adjustment', created_at: now.toISOString() }));
  for (let round = 0; round < MAX_REFUND_ROUNDS; round++) {
    const current = await ctx.repo.getOrder(order.merchant_id, order.id);
    if (!current) throw new NotFoundError('order', order.id);
    const result = await ctx.writer.write(
      {
        objects: [
          orderChange(current, {
            ...current,
            amount_refunded: current.amount_refunded - refund.amount,
            amount_refundable: (current.amount_refundable ?? 0) + refund.amount,
            ...(current.fx ? { fx_refunded: (current.fx_refunded ?? 0) - (refund.settlement_amount ?? 0) } : {}),
          }),
          refundChange(refund, { ...refund, status: 'failed', failure_reason: why.slice(0, 500) }),
        ],
        transfers: reversals,
        request,
        now,
      },
      { maxAttempts: 30 },
    );
    if (result.committed || result.refused === 'refund') return; // reversed, or settled by another path first
    if (result.refused !== 'order') throw new InternalError('refund_reversal_failed', `Reversing refund ${refund.id}: refused by ${result.all.join(', ')}`);
    await sleep(Math.random() * Math.min(200, 5 * 2 ** round));
  }
  throw new InternalError('refund_reversal_contended', `Reversing refund ${refund.id} lost ${MAX_REFUND_ROUNDS} races on order ${order.id}; the reconciler retries it.`);
}

/** What a refund of `requested` (default: all that is left) may take of `order`, or the error that refuses it. */
function refundable(order: PaymentOrder, requested: number | undefined, now: Date): number {
  if (order.status !== 'succeeded' || !order.channel_ref || !order.payment_id) {
    const status = effective(order, now).status;
    throw new ConflictError(`order_status_${status}`, msg['order_status.refund']({ id: order.id, status }), { param: 'order_id', extra: { status } });
  }
  const left = order.amount_refundable ?? 0;
  if (left <= 0) {
    throw new ConflictError('charge_already_refunded', msg.charge_already_refunded({ id: order.id, refunded: order.amount_refunded ?? 0, captured: order.amount_captured ?? 0 }), { param: 'order_id' });
  }
  const amount = requested ?? left;
  if (amount > left) throw tooLarge(order, amount, left);
  return amount;
}

function tooLarge(order: PaymentOrder, amount: number, refundable: number): InvalidRequestError {
  return new InvalidRequestError(
    'amount_too_large',
    msg['amount_too_large.refund']({ amount, id: order.id, refundable, major: toMajorString(refundable, order.currency), currency: order.currency, captured: order.amount_captured ?? 0 }),
    { param: 'amount' },
  );
}
