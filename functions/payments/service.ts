import { dynamo } from '../commons/clients';
import { newId } from '../commons/ids';
import { ConflictError, ContendedError, InternalError, InvalidRequestError, NotFoundError } from '../commons/errors';
import { open, seal } from '../commons/crypto';
import { Secret } from '../commons/secret';
import { logger } from '../commons/logger';
import { ALARM_METRICS, countAlarmMetric } from '../commons/metrics';
import { toMajorString } from '../commons/money';
import { parseInput } from '../http/validation';
import { cardBrand, last4 } from '../channels/cards';
import {
  CardDeclinedError,
  ChannelRejectedError,
  ChannelResultMismatchError,
  ChannelUnavailableError,
  DECLINE_MESSAGES,
  type AuthorizeResult,
  type ChannelEvent,
  type ChannelId,
  type PaymentChannel,
  type PaymentMethod,
} from '../channels';
import { channel as channelRegistry } from '../channels';
import {
  authorizationTransfer,
  captureTransfers,
  commitTransfers,
  feeAt,
  getBalances,
  paymentFeeRate,
  refundTransfer,
  refusalError,
  resolveFeeSchedule,
  voidTransfer,
  type Balance,
  type FeeSchedule,
  type FeeScheduleOverride,
  type PaymentFeeRate,
  type PaymentRef,
  type TransactItem,
  type Transfer,
} from '../ledger';
import { effective, transitionConflict, type OrderStatus, type Payer } from '../orders/order';
import { OrderRepository } from '../orders/repository';
import { OrderService, type Caller } from '../orders/service';
import type { Fingerprinter } from './fingerprint';
import { CARD_DECLINE_LIMIT, cardCounter, cardVelocityExceeded, ORDER_DECLINE_LIMIT, orderAttemptsExhausted } from './velocity';
import { getMerchantFees } from '../merchants/repository';
import { cachedMerchantFees } from './merchant-fees';
import {
  orderToApi,
  refundToApi,
  type ApiPaymentOrder,
  type ApiRefund,
  type LastPaymentError,
  type PaymentAttempt,
  type PaymentMethodDetails,
  type PaymentOrder,
  type Refund,
} from './payment';
import { INFLIGHT_SHARDS, type InFlightItem, type PaymentRepository } from './repository';
import { captureSchema, orderIdSchema, parseConfirm, refundIdSchema, refundSchema, type ConfirmInput } from './schemas';

/**
 * Payment operations: confirm, 3-D Secure completion, asynchronous channel results, capture, void,
 * refund and balance. Each follows the order operations' skeleton: validate → load → decide → persist
 * (one TransactWriteItems: the order's conditional write, the payment items and the ledger transfers)
 * → shape. The channel is called between a conditional claim and the write that applies its answer,
 * so two racing requests never both reach it for one order.
 */
export interface PaymentServiceDeps {
  repository: PaymentRepository;
  fingerprinter: Fingerprinter;
  /** @default the channel registry (channels/index.ts) */
  channel?: (id: ChannelId) => PaymentChannel;
  /** Closes unpaid orders (`close`). @default an OrderService on the same table */
  orders?: OrderService;
  /** The platform schedule merchants' overrides apply to. @default resolveFeeSchedule() (the platform default with FEE_SCHEDULE) */
  feeSchedule?: FeeSchedule;
  /** A merchant's fee override, read at confirm. @default the merchant item's, cached per container (merchant-fees.ts) */
  merchantFees?: (merchantId: string) => Promise<FeeScheduleOverride | undefined>;
  /**
   * Names of the ledger's platform-side accounts. Tests give each case its own, so its accounts'
   * debits and credits can be summed in isolation. @default channel id / the ledger's DEFAULT_PLATFORM
   */
  ledger?: { receivableOwner?: string; platform?: string };
}

/** The channel's answer, from authorize / completeAction / query / a notification. */
interface ChannelOutcome {
  status: AuthorizeResult['status'] | 'canceled';
  channelRef: string;
  declineCode?: AuthorizeResult['declineCode'];
  message?: string;
  challengeId?: string;
  sequence?: number;
}

export type ChannelEventOutcome =
  | { outcome: 'applied'; order_id: string; status: OrderStatus }
  | { outcome: 'recorded'; order_id: string; status: OrderStatus }
  | { outcome: 'duplicate' | 'stale'; order_id: string }
  | { outcome: 'ignored'; reason: 'unknown_payment' };

const CHANNEL: ChannelId = 'sandbox';
const MAX_APPLY_ROUNDS = 4;
/** Waiting for the channel: what the reconciler settles. */
const IN_FLIGHT: OrderStatus[] = ['processing', 'requires_action'];
/** Callbacks usually arrive within seconds; the reconciler leaves younger items to them. */
export const RECONCILE_GRACE_MS = 2 * 60_000;

export interface ReconcileSummary {
  settled: number;
  unresolved: number;
  failed: Array<{ id: string; error: string }>;
}

export class PaymentService {
  private readonly repo: PaymentRepository;
  private readonly channelOf: (id: ChannelId) => PaymentChannel;
  private readonly fees: () => FeeSchedule;
  private readonly merchantFees: (merchantId: string) => Promise<FeeScheduleOverride | undefined>;
  private readonly orders: OrderService;

  constructor(private readonly deps: PaymentServiceDeps) {
    this.repo = deps.repository;
    this.orders = deps.orders ?? new OrderService(new OrderRepository(deps.repository.table));
    this.channelOf = deps.channel ?? channelRegistry;
    this.fees = () => deps.feeSchedule ?? resolveFeeSchedule();
    this.merchantFees = deps.merchantFees ?? cachedMerchantFees((id) => getMerchantFees({ db: dynamo(), tableName: deps.repository.table }, id));
  }

  // ---- confirm ----------------------------------------------------------------------------------

  /**
   * POST /v1/orders/{id}/confirm. Claims the order (requires_payment → processing, conditional), then
   * authorizes once with a new attempt id and applies the answer. A decline leaves the order payable
   * with `last_payment_error` and throws the 402 CardDeclinedError. An answer lost in transit is
   * queried; if the channel still cannot say, the order stays `processing` until a notification or
   * `syncPayment` settles it.
   */
  async confirm(caller: Caller, orderId: string, body: unknown): Promise<ApiPaymentOrder> {
    const input = parseConfirm(body);
    const order = await this.loadOrder(caller, orderId);
    const paymentId = caller.newId?.('pay') ?? newId('pay');
    // The attempt is this request's own: a run of it died after claiming the order. Finish that attempt.
    if (order.payment_id === paymentId) return this.resumeConfirm(caller, order, paymentId, input);
    const current = effective(order, caller.now);
    if (current.status !== 'requires_payment') throw transitionConflict(order.id, current.status, 'processing');
    if ((order.declined_attempts ?? 0) >= ORDER_DECLINE_LIMIT) throw orderAttemptsExhausted(order.id);

    const { method, details, cardCiphertext, velocity } = await this.paymentMethod(input, order, caller.now);
    // The rate in force when the payer pays: whichever path captures later charges this one.
    const feeRate = await this.feeRate(order, input.payment_method.type);
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
    // Claim: exactly one confirm of an order gets past this write, and only while the order and the card are
    // below their decline limits (velocity.ts).
    const claim = await commitTransfers({
      table: this.repo.table,
      now: caller.now,
      transfers: [],
      maxAttempts: 30, // a card under attack makes its velocity counter a hot item
      items: [
        this.repo.orderUpdate(
          order,
          {
            to: 'processing',
            from: ['requires_payment'],
            notExpiredAt: caller.now,
            below: { declined_attempts: ORDER_DECLINE_LIMIT },
            set: {
              payment_id: paymentId,
              channel: CHANNEL,
              payment_method_details: details,
              fee_rate: feeRate,
              // The checkout's language becomes the receipts' language, unless the merchant sent payer.locale.
              ...(caller.payerLocale && !order.payer_locale ? { payer_locale: caller.payerLocale } : {}),
              ...(cardCiphertext ? { card_ciphertext: cardCiphertext } : {}),
              ...(velocity ? { card_velocity: velocity.pk } : {}),
            },
            remove: ['last_payment_error', 'next_action', 'channel_ref', ...(cardCiphertext ? [] : ['card_ciphertext']), ...(velocity ? [] : ['card_velocity'])],
          },
          caller.now,
        ),
        this.repo.attemptPut(attempt),
        ...(velocity ? [this.repo.cardSlotTake(velocity, CARD_DECLINE_LIMIT)] : []),
      ],
    });
    if (!claim.committed) {
      const now = await this.loadOrder(caller, orderId);
      const status = effective(now, caller.now).status;
      if (claim.reasons[0] === 'ConditionalCheckFailed' && status === 'requires_payment' && (now.declined_attempts ?? 0) >= ORDER_DECLINE_LIMIT) throw orderAttemptsExhausted(order.id);
      if (claim.reasons[0] !== 'ConditionalCheckFailed' && claim.reasons[2] === 'ConditionalCheckFailed') throw cardVelocityExceeded();
      if (claim.callerRefused) throw transitionConflict(order.id, status === 'requires_payment' ? 'processing' : status, 'processing');
      throw new InternalError('confirm_claim_failed', `Claiming order ${order.id} failed: ${claim.reasons.join(', ')}`);
    }

    return this.authorize(caller, order, paymentId, method);
  }

  /**
   * Resumes a confirm whose run died after claiming the order for `paymentId`: the channel is asked
   * first, since the dead run may have reached it; only an attempt the channel never saw is sent (again,
   * with the same paymentId, on which the channel is idempotent). A settled attempt is answered as the
   * first run would have: the order, or its decline.
   */
  private async resumeConfirm(caller: Caller, order: PaymentOrder, paymentId: string, input: ConfirmInput): Promise<ApiPaymentOrder> {
    if (order.status === 'processing') {
      const outcome = await this.queryQuietly(this.channelOf(order.channel ?? CHANNEL), { id: paymentId, amount: order.amount, currency: order.currency });
      if (!outcome) return this.authorize(caller, order, paymentId, (await this.paymentMethod(input, order, caller.now)).method);
      return this.settleConfirm(caller, order.id, paymentId, outcome);
    }
    const declined = order.last_payment_error;
    if (order.status === 'requires_payment' && declined?.payment_id === paymentId) {
      throw CardDeclinedError.of(CHANNEL, { declineCode: declined.decline_code, message: declined.message });
    }
    return this.present(caller, order);
  }

  /** Sends a claimed attempt to the channel and applies its answer (confirm's second half). */
  private async authorize(caller: Caller, order: PaymentOrder, paymentId: string, method: PaymentMethod): Promise<ApiPaymentOrder> {
    const ch = this.channelOf(CHANNEL);
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
          await this.apply(caller.merchantId, order.id, paymentId, { status: 'failed', channelRef: '', declineCode: 'processing_error', message: error.message });
        }
        throw error;
      }
      if (error.outcomeUnknown) outcome = await this.queryQuietly(ch, { id: paymentId, amount: order.amount, currency: order.currency });
      else {
        await this.apply(caller.merchantId, order.id, paymentId, { status: 'failed', channelRef: '', declineCode: 'processing_error', message: DECLINE_MESSAGES.processing_error });
        throw error;
      }
    }
    if (!outcome) return this.present(caller, await this.loadOrder(caller, order.id)); // still unknown: stays processing
    return this.settleConfirm(caller, order.id, paymentId, outcome);
  }

  private async settleConfirm(caller: Caller, orderId: string, paymentId: string, outcome: ChannelOutcome): Promise<ApiPaymentOrder> {
    const applied = await this.apply(caller.merchantId, orderId, paymentId, outcome);
    if (outcome.status === 'failed' && applied.last_payment_error?.payment_id === paymentId) {
      throw CardDeclinedError.of(CHANNEL, { declineCode: outcome.declineCode, message: outcome.message });
    }
    return this.present(caller, applied);
  }

  /** Finishes a `requires_action` order once the payer passed or failed the 3-D Secure challenge. */
  async completeThreeDSecure(caller: Caller, orderId: string, outcome: 'approve' | 'fail'): Promise<ApiPaymentOrder> {
    if (outcome !== 'approve' && outcome !== 'fail') {
      throw new InvalidRequestError('parameter_invalid', `Invalid 'outcome': got ${JSON.stringify(outcome)}. Use "approve" or "fail".`, { param: 'outcome' });
    }
    const order = await this.loadOrder(caller, orderId);
    if (order.status !== 'requires_action' || !order.next_action || !order.payment_id) throw transitionConflict(order.id, order.status, 'processing');
    const result = await this.channelOf(order.channel ?? CHANNEL).completeAction(order.payment_id, order.next_action.challenge_id, outcome);
    const applied = await this.apply(caller.merchantId, order.id, order.payment_id, fromAuthorize(result));
    return this.present(caller, applied);
  }

  /**
   * Asks the channel about the order's current attempt and applies what it says: the "lost answer"
   * path for orders left `processing` (or `requires_action`). Safe to call any time.
   */
  async syncPayment(caller: Caller, orderId: string): Promise<ApiPaymentOrder> {
    return this.present(caller, await this.sync(await this.loadOrder(caller, orderId)));
  }

  private async sync(order: PaymentOrder): Promise<PaymentOrder> {
    if (!order.payment_id || !IN_FLIGHT.includes(order.status)) return order;
    // The attempt's amount and currency are the order's: confirm copies them, and an order's never change.
    const outcome = await this.queryQuietly(this.channelOf(order.channel ?? CHANNEL), { id: order.payment_id, amount: order.amount, currency: order.currency });
    if (!outcome || outcome.status === 'processing') return order;
    return this.apply(order.merchant_id, order.id, order.payment_id, outcome);
  }

  // ---- reconciliation ---------------------------------------------------------------------------

  /**
   * The scheduled sweep (ReconcilePayments): orders left `processing` / `requires_action` and refunds left
   * `pending` for longer than `graceMs` (callbacks usually come first) are settled by asking the channel, and
   * its answer goes through the same conditional writes as a callback's, so a callback racing the sweep
   * moves money once. What the channel still cannot settle waits for the next run. One item's failure does
   * not stop the others: it is returned, and the item stays in the index.
   */
  async reconcileDue(now: Date, { graceMs = RECONCILE_GRACE_MS, perShard = 25 } = {}): Promise<ReconcileSummary> {
    const summary: ReconcileSummary = { settled: 0, unresolved: 0, failed: [] };
    for (let shard = 0; shard < INFLIGHT_SHARDS; shard++) {
      const due = await this.repo.dueForReconciliation(shard, new Date(now.getTime() - graceMs), perShard);
      const results = await Promise.allSettled(due.map((item) => this.reconcile(item, now)));
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') summary[r.value]++;
        else summary.failed.push({ id: due[i]!.id, error: r.reason instanceof Error ? `${r.reason.name}: ${r.reason.message}` : String(r.reason) });
      });
    }
    return summary;
  }

  private async reconcile(item: InFlightItem, now: Date): Promise<'settled' | 'unresolved'> {
    let inFlight: boolean;
    if (item.type === 'order') {
      const order = await this.repo.getOrder(item.merchant_id, item.id);
      inFlight = !!order && IN_FLIGHT.includes((await this.sync(order)).status);
    } else {
      const refund = await this.repo.getRefund(item.merchant_id, item.id);
      const order = refund?.status === 'pending' ? await this.repo.getOrder(item.merchant_id, refund.order_id) : undefined;
      inFlight = !!refund && !!order && (await this.retryRefund(order, refund, now)).status === 'pending';
    }
    if (inFlight) await this.repo.requeue(item, now);
    return inFlight ? 'unresolved' : 'settled';
  }

  // ---- asynchronous results ---------------------------------------------------------------------

  /**
   * Applies a verified channel notification (the notify handler verified it with
   * `channel.parseNotification`). Idempotent: a redelivered event (same eventId) and a stale one (a
   * sequence at or below one already applied) change nothing. Every outcome means "acknowledge". An event for
   * another amount or currency than the attempt's is refused (ChannelResultMismatchError) and changes nothing.
   */
  async applyChannelEvent(event: ChannelEvent, now: Date = new Date()): Promise<ChannelEventOutcome> {
    const attempt = await this.repo.getAttempt(event.paymentId);
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
      const order = await this.repo.getOrder(attempt.merchant_id, attempt.order_id);
      if (!order) return { outcome: 'ignored', reason: 'unknown_payment' };
      const plan = await this.plan(order, attempt.id, outcome, now);
      const items: TransactItem[] = [
        this.repo.eventPut(attempt.channel, event, now),
        this.repo.attemptUpdate(attempt.id, { ...plan.attempt, channel_ref: event.channelRef }, now, event.sequence),
        ...(plan.order ? [plan.order, ...plan.items] : []),
      ];
      const result = await commitTransfers({ table: this.repo.table, now, transfers: plan.transfers, items });
      if (result.committed) {
        return plan.order ? { outcome: 'applied', order_id: order.id, status: plan.to! } : { outcome: 'recorded', order_id: order.id, status: order.status };
      }
      if (result.reasons[0] === 'ConditionalCheckFailed') return { outcome: 'duplicate', order_id: order.id };
      if (result.reasons[1] === 'ConditionalCheckFailed') return { outcome: 'stale', order_id: order.id };
      if (!result.callerRefused && result.ledger) throw refusalError(result.ledger);
      if (!result.callerRefused) throw new InternalError('channel_event_not_applied', `Event ${event.eventId}: ${result.reasons.join(', ')}`);
      // The order moved since we read it: decide again on its new state.
    }
    throw new InternalError('channel_event_contended', `Event ${event.eventId} lost ${MAX_APPLY_ROUNDS} races on order ${attempt.order_id}; the channel will resend it.`);
  }

  // ---- capture, void ----------------------------------------------------------------------------

  /** POST /v1/orders/{id}/capture: captures `amount` (default all) of a requires_capture order; the rest is released. */
  async capture(caller: Caller, orderId: string, body: unknown = {}): Promise<ApiPaymentOrder> {
    const input = parseInput(captureSchema, body ?? {});
    const order = await this.loadOrder(caller, orderId);
    const authorized = order.amount_authorized ?? order.amount;
    const amount = input.amount ?? authorized;
    // A run of this request that died after its write: answer as it would have.
    if (caller.resumed && order.status === 'succeeded' && order.amount_captured === amount) return this.present(caller, order);
    if (order.status !== 'requires_capture' || !order.channel_ref || !order.payment_id) throw transitionConflict(order.id, order.status, 'succeeded');
    if (amount > authorized) {
      throw new InvalidRequestError(
        'amount_too_large',
        `Invalid 'amount': got ${amount}. Capture at most the authorized ${amount === authorized ? '' : `${authorized} (${toMajorString(authorized, order.currency)} ${order.currency})`}.`,
        { param: 'amount' },
      );
    }
    // Before the channel call: nothing that can fail may sit between the channel capturing and the write.
    const fee = feeAt(amount, order.fee_rate ?? (await this.feeRate(order)));
    await this.channelOf(order.channel ?? CHANNEL).capture(order.channel_ref, amount);
    const result = await commitTransfers({
      table: this.repo.table,
      now: caller.now,
      transfers: captureTransfers(this.ref(order), { amount, fee, authorized }, caller.now),
      items: [
        this.repo.orderUpdate(
          order,
          { to: 'succeeded', from: ['requires_capture'], paymentId: order.payment_id, set: { amount_captured: amount, amount_refundable: amount, paid_at: caller.now.toISOString() } },
          caller.now,
        ),
        this.repo.attemptUpdate(order.payment_id, { status: 'succeeded' }, caller.now),
      ],
    });
    const after = await this.loadOrder(caller, orderId);
    if (!result.committed) {
      // A concurrent capture of the same amount already applied it: same answer.
      if (after.status === 'succeeded' && after.amount_captured === amount) return this.present(caller, after);
      if (result.callerRefused) throw transitionConflict(order.id, after.status, 'succeeded');
      throw result.ledger ? refusalError(result.ledger, amount) : new InternalError('capture_not_applied', result.reasons.join(', '));
    }
    return this.present(caller, after);
  }

  /**
   * POST /v1/orders/{id}/close, the one place that decides how an order closes: an authorization
   * (`requires_capture`) or a 3-D Secure attempt (`requires_action`) is voided (`voidAuthorization`); an
   * unpaid order is closed by the order rules (`OrderService.closeUnpaid`); a closed one is returned again.
   */
  async close(caller: Caller, orderId: string): Promise<ApiPaymentOrder> {
    const order = await this.loadOrder(caller, orderId);
    if (order.status === 'requires_capture' || order.status === 'requires_action') return this.voidAuthorization(caller, orderId);
    return this.present(caller, (await this.orders.closeUnpaid(caller, orderId)) as PaymentOrder);
  }

  /**
   * Cancels the payment of an order before money moved: a requires_capture authorization is voided
   * at the channel and released in the ledger; a requires_action attempt is abandoned. The order is
   * closed. `close` calls this for those two statuses.
   */
  async voidAuthorization(caller: Caller, orderId: string): Promise<ApiPaymentOrder> {
    const order = await this.loadOrder(caller, orderId);
    if (order.status === 'closed') return this.present(caller, order);
    if ((order.status !== 'requires_capture' && order.status !== 'requires_action') || !order.payment_id) {
      throw transitionConflict(order.id, effective(order, caller.now).status, 'closed');
    }
    const ch = this.channelOf(order.channel ?? CHANNEL);
    if (order.channel_ref) await ch.void(order.channel_ref);
    const voids = order.status === 'requires_capture';
    const result = await commitTransfers({
      table: this.repo.table,
      now: caller.now,
      transfers: voids ? [voidTransfer(this.ref(order), order.amount_authorized ?? order.amount, caller.now)] : [],
      items: [
        this.repo.orderUpdate(
          order,
          { to: 'closed', from: [order.status], paymentId: order.payment_id, set: { closed_at: caller.now.toISOString(), close_reason: 'merchant' }, remove: ['next_action'] },
          caller.now,
        ),
        this.repo.attemptUpdate(order.payment_id, { status: 'canceled' }, caller.now),
      ],
    });
    const after = await this.loadOrder(caller, orderId);
    if (!result.committed && after.status !== 'closed') {
      if (result.callerRefused) throw transitionConflict(order.id, after.status, 'closed');
      throw result.ledger ? refusalError(result.ledger) : new InternalError('void_not_applied', result.reasons.join(', '));
    }
    return this.present(caller, after);
  }

  // ---- refunds ----------------------------------------------------------------------------------

  /**
   * POST /v1/refunds. Reserves the amount on the order (condition: amount_refundable ≥ amount) in
   * the same transaction as the refund item and the ledger's refund transfer, then asks the channel.
   * A channel refusal compensates (the reservation and the transfer are reversed, the refund is
   * `failed`); no answer leaves the refund `pending` (the channel is idempotent on the refund id).
   */
  async refund(caller: Caller, body: unknown): Promise<ApiRefund> {
    const input = parseInput(refundSchema, body);
    const order = await this.loadOrder(caller, input.order_id, 'order_id');
    const refundId = caller.newId?.('re') ?? newId('re');
    // The run that died may have reserved this refund already: finish that one, never start a second.
    const earlier = caller.resumed ? await this.repo.getRefund(caller.merchantId, refundId) : undefined;
    if (earlier) return refundToApi(await this.resumeRefund(order, earlier, caller.now));
    if (order.status !== 'succeeded' || !order.channel_ref || !order.payment_id) {
      throw new ConflictError(
        `order_status_${effective(order, caller.now).status}`,
        `Order '${order.id}' is ${effective(order, caller.now).status}; only a succeeded order can be refunded.`,
        { param: 'order_id', extra: { status: effective(order, caller.now).status } },
      );
    }
    const refundable = order.amount_refundable ?? 0;
    if (refundable <= 0) {
      throw new ConflictError('charge_already_refunded', `Order '${order.id}' has been refunded in full (${order.amount_refunded} of ${order.amount_captured}).`, { param: 'order_id' });
    }
    const amount = input.amount ?? refundable;
    if (amount > refundable) throw tooLarge(order, amount, refundable);

    const refund: Refund = {
      id: refundId,
      order_id: order.id,
      merchant_id: order.merchant_id,
      payment_id: order.payment_id,
      amount,
      currency: order.currency,
      status: 'pending',
      reason: input.reason,
      created_at: caller.now.toISOString(),
      updated_at: caller.now.toISOString(),
    };
    const transfer = refundTransfer(this.ref(order), { refund_id: refund.id, amount }, caller.now);
    const reserved = await commitTransfers({
      table: this.repo.table,
      now: caller.now,
      transfers: [transfer],
      maxAttempts: 30,
      items: [
        this.repo.orderUpdate(order, { from: ['succeeded'], add: { amount_refunded: amount, amount_refundable: -amount }, atLeast: { amount_refundable: amount } }, caller.now),
        this.repo.refundPut(refund),
      ],
    });
    if (!reserved.committed) {
      if (reserved.callerRefused) {
        const now = await this.loadOrder(caller, order.id, 'order_id');
        if (now.status !== 'succeeded') throw new ConflictError(`order_status_${now.status}`, `Order '${order.id}' is ${now.status}; only a succeeded order can be refunded.`, { param: 'order_id' });
        throw tooLarge(now, amount, now.amount_refundable ?? 0);
      }
      if (reserved.ledger) throw refusalError(reserved.ledger, amount);
      throw new ContendedError('refund_contended', `Too many refunds of order '${order.id}' at once; retry this one with the same Idempotency-Key.`, { param: 'order_id' });
    }

    return refundToApi(await this.askRefund(order, refund, transfer, caller.now));
  }

  /**
   * Asks the channel for a reserved refund and applies the answer: succeeded → `succeeded`; refused →
   * compensated (reverseRefund) and the error thrown; no answer → stays `pending`. Safe to repeat: the channel
   * is idempotent on the refund id, and each write is conditioned on the refund still being `pending`.
   */
  private async askRefund(order: PaymentOrder, refund: Refund, transfer: Transfer, now: Date): Promise<Refund> {
    try {
      const result = await this.channelOf(order.channel ?? CHANNEL).refund(order.channel_ref!, refund.id, refund.amount);
      if (result.status === 'failed') throw new ChannelRejectedError(CHANNEL, 'refund_failed', result.message ?? 'The channel declined the refund.');
      const status = result.status === 'succeeded' ? 'succeeded' : 'pending';
      await this.repo.send(this.repo.refundUpdate(refund.id, { status, channel_refund_ref: result.refundRef }, now));
      return { ...refund, status, channel_refund_ref: result.refundRef };
    } catch (error) {
      if (error instanceof ChannelUnavailableError) return refund; // pending: retry/reconcile with the same refund id
      if (error instanceof ChannelRejectedError) {
        await this.reverseRefund(order, refund, transfer, error.message, now);
      }
      throw error;
    }
  }

  /**
   * A refund a dead run reserved, finished as its first run would have: a pending one asks the channel
   * (idempotent on the refund id: a refund the channel made is answered, not made again); a settled one is
   * answered as it is, a failed one with the channel's refusal.
   */
  private async resumeRefund(order: PaymentOrder, refund: Refund, now: Date): Promise<Refund> {
    if (refund.status === 'failed') throw new ChannelRejectedError(CHANNEL, 'refund_failed', refund.failure_reason ?? 'The channel declined the refund.');
    if (refund.status !== 'pending') return refund;
    return this.askAgain(order, refund, now);
  }

  /** The reconciler's retry of a `pending` refund: a refusal is compensated, then reported as `failed`. */
  private async retryRefund(order: PaymentOrder, refund: Refund, now: Date): Promise<Refund> {
    try {
      return await this.askAgain(order, refund, now);
    } catch (error) {
      if (error instanceof ChannelRejectedError) return { ...refund, status: 'failed' };
      throw error;
    }
  }

  /** askRefund for a refund reserved earlier: the same accounts and amount as the reservation's transfer, so a reversal mirrors it. */
  private askAgain(order: PaymentOrder, refund: Refund, now: Date): Promise<Refund> {
    return this.askRefund(order, refund, refundTransfer(this.ref(order), { refund_id: refund.id, amount: refund.amount }, now), now);
  }

  /** The compensation of a refund the channel refused: reservation, transfer and refund reversed together. */
  private async reverseRefund(order: PaymentOrder, refund: Refund, transfer: Transfer, why: string, now: Date): Promise<void> {
    const reversal: Transfer = { ...transfer, id: `tr_${refund.id}_reversal`, debit: transfer.credit, credit: transfer.debit, kind: 'adjustment', created_at: now.toISOString() };
    const result = await commitTransfers({
      table: this.repo.table,
      now,
      transfers: [reversal],
      maxAttempts: 30,
      items: [
        this.repo.refundUpdate(refund.id, { status: 'failed', failure_reason: why.slice(0, 500) }, now),
        this.repo.orderUpdate(order, { from: ['succeeded'], add: { amount_refunded: -refund.amount, amount_refundable: refund.amount } }, now),
      ],
    });
    if (!result.committed && !result.callerRefused) throw new InternalError('refund_reversal_failed', `Reversing refund ${refund.id}: ${result.reasons.join(', ')}`);
  }

  async getRefund(caller: Caller, id: string): Promise<ApiRefund> {
    const refund = refundIdSchema.safeParse(id).success ? await this.repo.getRefund(caller.merchantId, id) : undefined;
    if (!refund) throw new NotFoundError('refund', id);
    return refundToApi(refund);
  }

  /** GET /v1/orders/{id}/refunds, oldest first. */
  async listRefunds(caller: Caller, orderId: string) {
    const order = await this.loadOrder(caller, orderId);
    const refunds = await this.repo.listRefunds(caller.merchantId, order.id);
    return { object: 'list' as const, url: `/v1/orders/${order.id}/refunds`, has_more: false, data: refunds.map(refundToApi) };
  }

  /** GET /v1/balance. */
  async balance(caller: Caller): Promise<Balance> {
    return getBalances(caller.merchantId, { table: this.repo.table });
  }

  /** An order with its payment fields and decrypted payer, as the API shows it. */
  async getOrder(caller: Caller, orderId: string): Promise<ApiPaymentOrder> {
    return this.present(caller, await this.loadOrder(caller, orderId));
  }

  // ---- the shared decide + persist --------------------------------------------------------------

  /**
   * Applies a channel outcome of attempt `paymentId` to its order: decides the transition (plan) and
   * writes it with its ledger transfers; when the order moved meanwhile, decides again. Returns the
   * order as stored afterwards.
   */
  private async apply(merchantId: string, orderId: string, paymentId: string, outcome: ChannelOutcome): Promise<PaymentOrder> {
    for (let round = 0; round < MAX_APPLY_ROUNDS; round++) {
      const now = new Date();
      const order = await this.repo.getOrder(merchantId, orderId);
      if (!order) throw new NotFoundError('order', orderId);
      const plan = await this.plan(order, paymentId, outcome, now);
      if (!plan.order) {
        if (outcome.channelRef) await this.repo.send(this.repo.attemptUpdate(paymentId, { channel_ref: outcome.channelRef }, now));
        return order;
      }
      const result = await commitTransfers({
        table: this.repo.table,
        now,
        transfers: plan.transfers,
        items: [plan.order, this.repo.attemptUpdate(paymentId, { ...plan.attempt, ...(outcome.channelRef ? { channel_ref: outcome.channelRef } : {}) }, now, outcome.sequence), ...plan.items],
      });
      if (result.committed) return (await this.repo.getOrder(merchantId, orderId))!;
      if (result.reasons[1] === 'ConditionalCheckFailed') return (await this.repo.getOrder(merchantId, orderId))!; // a newer result already applied
      if (!result.callerRefused) throw result.ledger ? refusalError(result.ledger) : new InternalError('payment_not_applied', result.reasons.join(', '));
    }
    throw new InternalError('payment_contended', `Applying attempt ${paymentId} lost ${MAX_APPLY_ROUNDS} races on order ${orderId}.`);
  }

  /**
   * What an outcome does to an order in its current state: the order's write, the attempt's fields, the
   * transfers, and other items of the same transaction (the card's velocity slot: velocity.ts).
   */
  private async plan(order: PaymentOrder, paymentId: string, o: ChannelOutcome, now: Date) {
    const none = { order: undefined, to: undefined as OrderStatus | undefined, transfers: [] as Transfer[], attempt: attemptStatus(o), items: [] as TransactItem[] };
    // Only the current attempt of an order still waiting for its result moves it.
    if (order.payment_id !== paymentId || !['processing', 'requires_action'].includes(order.status)) return none;
    const from: OrderStatus[] = [order.status];
    // A final result settles the card's velocity slot: a decline keeps it (counted), anything else gives it back.
    const isDecline = o.status === 'failed' && o.declineCode !== 'processing_error';
    const slot = order.card_velocity ? { remove: ['card_velocity'], items: isDecline ? [] : [this.repo.cardSlotRelease(order.card_velocity, now)] } : { remove: [], items: [] };
    const base = { from, paymentId };
    const at = now.toISOString();
    switch (o.status) {
      case 'processing':
        return none;
      case 'requires_action':
        if (order.status === 'requires_action') return none;
        return {
          ...none,
          to: 'requires_action' as const,
          order: this.repo.orderUpdate(order, { ...base, to: 'requires_action', set: { channel_ref: o.channelRef, next_action: { type: 'three_d_secure', challenge_id: o.challengeId ?? '' } } }, now),
        };
      case 'requires_capture':
        return {
          ...none,
          to: 'requires_capture' as const,
          order: this.repo.orderUpdate(order, { ...base, to: 'requires_capture', set: { channel_ref: o.channelRef, amount_authorized: order.amount }, remove: ['next_action', ...slot.remove] }, now),
          transfers: [authorizationTransfer(this.ref(order), order.amount, now)],
          items: slot.items,
        };
      case 'succeeded': {
        const fee = feeAt(order.amount, order.fee_rate ?? (await this.feeRate(order)));
        return {
          ...none,
          to: 'succeeded' as const,
          order: this.repo.orderUpdate(
            order,
            {
              ...base,
              to: 'succeeded',
              set: { channel_ref: o.channelRef, amount_authorized: order.amount, amount_captured: order.amount, amount_refundable: order.amount, paid_at: at },
              remove: ['next_action', ...slot.remove],
            },
            now,
          ),
          transfers: captureTransfers(this.ref(order), { amount: order.amount, fee }, now),
          items: slot.items,
        };
      }
      case 'failed':
      case 'canceled': {
        const declineCode = o.declineCode ?? 'card_declined';
        const declined = new CardDeclinedError(CHANNEL, declineCode, o.message ?? DECLINE_MESSAGES[declineCode]);
        const error: LastPaymentError = {
          type: declineCode === 'processing_error' ? 'api_error' : 'card_error',
          code: declined.code,
          decline_code: declineCode,
          message: declined.message,
          payment_id: paymentId,
        };
        return {
          ...none,
          to: 'requires_payment' as const,
          order: this.repo.orderUpdate(
            order,
            { ...base, to: 'requires_payment', set: { last_payment_error: error }, remove: ['next_action', 'channel_ref', ...slot.remove], ...(isDecline ? { add: { declined_attempts: 1 } } : {}) },
            now,
          ),
          items: slot.items,
        };
      }
    }
  }

  /**
   * The merchant's current rate for a payment of `order` by `method`. Orders confirmed before rates were
   * snapshotted (no `fee_rate`) are charged this at capture.
   */
  private async feeRate(order: PaymentOrder, method = methodOf(order)): Promise<PaymentFeeRate> {
    return paymentFeeRate(resolveFeeSchedule(await this.merchantFees(order.merchant_id), this.fees()), method, order.currency);
  }

  private ref(order: PaymentOrder): PaymentRef {
    const channel = order.channel ?? CHANNEL;
    return {
      order_id: order.id,
      merchant_id: order.merchant_id,
      currency: order.currency,
      channel: this.deps.ledger?.receivableOwner ?? channel,
      platform: this.deps.ledger?.platform,
    };
  }

  /** The channel's answer about `attempt`; undefined when it has none, or none that carries the attempt's amount and currency. */
  private async queryQuietly(ch: PaymentChannel, attempt: Pick<PaymentAttempt, 'id' | 'amount' | 'currency'>): Promise<ChannelOutcome | undefined> {
    try {
      const found = await ch.query(attempt.id);
      // No record at the channel: it never acted on the request. Left `processing` all the same,
      // since a request still in flight could yet arrive; syncPayment settles it later.
      if (!found || !carriesAttempt(attempt, found, 'query')) return undefined;
      return {
        status: found.status,
        channelRef: found.channelRef,
        declineCode: found.declineCode,
        message: found.message,
        challengeId: found.action?.challengeId,
        sequence: found.sequence,
      };
    } catch (error) {
      if (error instanceof ChannelUnavailableError) return undefined;
      throw error;
    }
  }

  private async paymentMethod(
    input: ConfirmInput,
    order: PaymentOrder,
    now: Date,
  ): Promise<{ method: PaymentMethod; details: PaymentMethodDetails; cardCiphertext?: Uint8Array; velocity?: { pk: string; ttl: number } }> {
    const pm = input.payment_method;
    if (pm.type === 'wallet') return { method: { type: 'wallet' }, details: { type: 'wallet' } };
    const pan = new Secret(pm.card.number);
    const fingerprints = await this.deps.fingerprinter.fingerprint(pan, order.merchant_id);
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
      velocity: this.channelOf(CHANNEL).publishedTestCards?.has(pm.card.number) ? undefined : cardCounter(fingerprints.platform, now),
    };
  }

  private async loadOrder(caller: Caller, id: string, param = 'id'): Promise<PaymentOrder> {
    const order = orderIdSchema.safeParse(id).success ? await this.repo.getOrder(caller.merchantId, id) : undefined;
    if (!order) throw new NotFoundError('order', id, param);
    return order;
  }

  private async present(caller: Caller, order: PaymentOrder): Promise<ApiPaymentOrder> {
    const payer =
      order.payer_ciphertext && caller.payer !== false
        ? (await open<Payer>(order.payer_ciphertext, { purpose: 'payer', merchantId: order.merchant_id, recordId: order.id })).reveal()
      : undefined;
    return orderToApi(order, payer, caller.baseUrl, caller.now);
  }
}

function fromAuthorize(r: AuthorizeResult): ChannelOutcome {
  return { status: r.status, channelRef: r.channelRef, declineCode: r.declineCode, message: r.message, challengeId: r.action?.challengeId };
}

/**
 * Whether a channel result is for the attempt's amount and currency. The signature only says the channel sent
 * it: a correctly signed success for 0.01 USD, or for 50.00 EUR, must not capture a 50.00 USD order. A result
 * that is not is counted (the ChannelResultMismatch alarm) and logged with the amounts, never applied.
 */
function carriesAttempt(attempt: Pick<PaymentAttempt, 'id' | 'amount' | 'currency'>, result: { amount: number; currency: string }, source: 'notification' | 'query'): boolean {
  if (result.amount === attempt.amount && result.currency === attempt.currency) return true;
  countAlarmMetric(ALARM_METRICS.channelResultMismatch);
  logger.error('channel result refused: amount or currency differs from the attempt', {
    source,
    paymentId: attempt.id,
    expected: { amount: attempt.amount, currency: attempt.currency },
    got: { amount: result.amount, currency: result.currency },
  });
  return false;
}

function attemptStatus(o: ChannelOutcome): Partial<PaymentAttempt> {
  return { status: o.status === 'failed' ? 'failed' : o.status, ...(o.declineCode ? { decline_code: o.declineCode } : {}) };
}

function methodOf(order: PaymentOrder): 'card' | 'wallet' {
  return order.payment_method_details?.type === 'wallet' ? 'wallet' : 'card';
}

function tooLarge(order: PaymentOrder, amount: number, refundable: number): InvalidRequestError {
  return new InvalidRequestError(
    'amount_too_large',
    `Invalid 'amount': got ${amount}. Order '${order.id}' has ${refundable} (${toMajorString(refundable, order.currency)} ${order.currency}) left to refund of ${order.amount_captured ?? 0} captured; refund at most that.`,
    { param: 'amount' },
  );
}
