import { dynamo } from '../../commons/clients';
import { InvalidRequestError, NotFoundError } from '../../commons/errors';
import { MAX_AMOUNT } from '../../commons/money';
import { conversionOf, crossBorderFeeBps, lockOf, merchantSettlementCurrency, noRateInForce, rateInForce, type FxLock, type FxRate } from '../../fx';
import { open } from '../../commons/crypto';
import { logger } from '../../commons/logger';
import { ALARM_METRICS, countAlarmMetric } from '../../commons/metrics';
import { ChannelUnavailableError, type ChannelId, type PaymentChannel } from '../../channels';
import { channel as channelRegistry } from '../../channels';
import { getBalances, paymentFeeRate, resolveFeeSchedule, type Balance, type FeeSchedule, type FeeScheduleOverride, type PaymentFeeRate, type PaymentMethodType, type PaymentRef } from '../../ledger';
import { ChangeWriter } from '../../changes/writer';
import { type OrderStatus, type Payer } from '../../orders/order';
import { OrderRepository } from '../../orders/repository';
import { OrderService, type Caller } from '../../orders/service';
import type { Fingerprinter } from '../fingerprint';
import { getMerchantFees } from '../../merchants/repository';
import { cachedMerchantFees } from '../merchant-fees';
import { type ChannelOutcome } from '../outcome';
import { orderToApi, refundToApi, type ApiPaymentOrder, type ApiRefund, type PaymentAttempt, type PaymentOrder } from '../payment';
import { type PaymentRepository } from '../repository';
import { orderIdSchema, refundIdSchema } from '../schemas';

/**
 * What every payment operation (operations/<op>.ts) works with: the repository, the writer, the channel, the fee
 * schedules, and the loads and presentations they share. Built once per container (payments/index.ts).
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
  /** The merchant's settlement currency. @default its `payout.settlement_currency`, else SETTLEMENT_CURRENCY (fx/settings.ts) */
  settlementCurrency?: (merchantId: string) => Promise<string>;
  /** The FX rate in force for a pair at a time. @default the rate table (fx/table.ts rateInForce) */
  fxRateInForce?: (from: string, to: string, at: Date) => Promise<FxRate | undefined>;
  /** Added to the method's percentage on converted payments. @default CROSS_BORDER_FEE_BPS, else 100 */
  crossBorderFeeBps?: number;
  /**
   * Names of the ledger's platform-side accounts. Tests give each case its own, so its accounts'
   * debits and credits can be summed in isolation. @default channel id / the ledger's DEFAULT_PLATFORM
   */
  ledger?: { receivableOwner?: string; platform?: string };
}

export type ChannelEventOutcome =
  | { outcome: 'applied'; order_id: string; status: OrderStatus }
  | { outcome: 'recorded'; order_id: string; status: OrderStatus }
  | { outcome: 'duplicate' | 'stale'; order_id: string }
  | { outcome: 'ignored'; reason: 'unknown_payment' };

export const CHANNEL: ChannelId = 'sandbox';
export const MAX_APPLY_ROUNDS = 4;
/** Refunds of one order race on its version; 50 at once settle well within this. */
export const MAX_REFUND_ROUNDS = 60;
/** Waiting for the channel: what the reconciler settles. */
export const IN_FLIGHT: OrderStatus[] = ['processing', 'requires_action'];
/** Callbacks usually arrive within seconds; the reconciler leaves younger items to them. */
export const RECONCILE_GRACE_MS = 2 * 60_000;

export interface ReconcileSummary {
  settled: number;
  unresolved: number;
  failed: Array<{ id: string; error: string }>;
}

export class PaymentContext {
  readonly repo: PaymentRepository;
  readonly writer: ChangeWriter;
  readonly channelOf: (id: ChannelId) => PaymentChannel;
  readonly fees: () => FeeSchedule;
  readonly merchantFees: (merchantId: string) => Promise<FeeScheduleOverride | undefined>;
  readonly orders: OrderService;
  readonly settlementCurrency: (merchantId: string) => Promise<string>;
  readonly fxRateInForce: (from: string, to: string, at: Date) => Promise<FxRate | undefined>;

  constructor(readonly deps: PaymentServiceDeps) {
    this.repo = deps.repository;
    this.writer = new ChangeWriter(deps.repository.table);
    this.orders = deps.orders ?? new OrderService(new OrderRepository(deps.repository.table));
    this.channelOf = deps.channel ?? channelRegistry;
    this.fees = () => deps.feeSchedule ?? resolveFeeSchedule();
    const fxDeps = () => ({ db: dynamo(), tableName: deps.repository.table });
    this.settlementCurrency = deps.settlementCurrency ?? ((id) => merchantSettlementCurrency(fxDeps(), id));
    this.fxRateInForce = deps.fxRateInForce ?? ((from, to, at) => rateInForce(fxDeps(), from, to, at));
    this.merchantFees = deps.merchantFees ?? cachedMerchantFees((id) => getMerchantFees({ db: dynamo(), tableName: deps.repository.table }, id));
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

  /** GET /v1/balance: Stripe's meanings (ledger/balance.ts), at the request's time. */
  async balance(caller: Caller): Promise<Balance> {
    return getBalances(caller.merchantId, { table: this.repo.table, now: caller.now });
  }

  /** An order with its payment fields and decrypted payer, as the API shows it. */
  async getOrder(caller: Caller, orderId: string): Promise<ApiPaymentOrder> {
    return this.present(caller, await this.loadOrder(caller, orderId));
  }

  /**
   * The merchant's current rate for a payment of `order` by `method`. Orders confirmed before rates were
   * snapshotted (no `fee_rate`) are charged this at capture.
   */
  async feeRate(order: PaymentOrder, method = methodOf(order)): Promise<PaymentFeeRate> {
    return paymentFeeRate(resolveFeeSchedule(await this.merchantFees(order.merchant_id), this.fees()), method, order.currency);
  }

  /**
   * What confirm locks on the order: for an order in another currency than the merchant's settlement currency,
   * the rate in force now (fx) and a fee rate in the settlement currency with the cross-border fee added; else the
   * merchant's fee rate alone. No rate in force refuses the confirm (409, before anything is written or sent).
   */
  async lockRates(order: PaymentOrder, method: PaymentMethodType, now: Date): Promise<{ feeRate: PaymentFeeRate; fx?: FxLock }> {
    const settlement = await this.settlementCurrency(order.merchant_id);
    if (settlement === order.currency) return { feeRate: await this.feeRate(order, method) };
    const rate = await this.fxRateInForce(order.currency, settlement, now);
    if (!rate) throw noRateInForce(order.id, order.currency, settlement, now);
    const crossBorder = this.deps.crossBorderFeeBps ?? crossBorderFeeBps();
    const fx = lockOf(rate, crossBorder);
    const base = paymentFeeRate(resolveFeeSchedule(await this.merchantFees(order.merchant_id), this.fees()), method, settlement);
    const amount = conversionOf(fx, order.amount).base;
    if (amount > MAX_AMOUNT) {
      throw new InvalidRequestError('amount_too_large', `Invalid 'amount': order '${order.id}' converts to ${amount} ${settlement} minor units, over the ${MAX_AMOUNT} a payment may move.`, { param: 'amount' });
    }
    return { fx, feeRate: { ...base, percent_bps: Math.min(10_000, base.percent_bps + crossBorder) } };
  }

  ref(order: PaymentOrder): PaymentRef {
    const channel = order.channel ?? CHANNEL;
    return {
      order_id: order.id,
      merchant_id: order.merchant_id,
      currency: order.currency,
      channel: this.deps.ledger?.receivableOwner ?? channel,
      platform: this.deps.ledger?.platform,
      // The capture names the attempt: the channel's statement lists captures by it (settlements/reconcile.ts).
      ...(order.payment_id ? { payment_id: order.payment_id } : {}),
    };
  }

  /** The channel's answer about `attempt`; undefined when it has none, or none that carries the attempt's amount and currency. */
  async queryQuietly(ch: PaymentChannel, attempt: Pick<PaymentAttempt, 'id' | 'amount' | 'currency'>): Promise<ChannelOutcome | undefined> {
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

  async loadOrder(caller: Caller, id: string, param = 'id'): Promise<PaymentOrder> {
    const order = orderIdSchema.safeParse(id).success ? await this.repo.getOrder(caller.merchantId, id) : undefined;
    if (!order) throw new NotFoundError('order', id, param);
    return order;
  }

  async present(caller: Caller, order: PaymentOrder): Promise<ApiPaymentOrder> {
    const payer =
      order.payer_ciphertext && caller.payer !== false
        ? (await open<Payer>(order.payer_ciphertext, { purpose: 'payer', merchantId: order.merchant_id, recordId: order.id })).reveal()
      : undefined;
    return orderToApi(order, payer, caller.baseUrl, caller.now);
  }
}


/**
 * Whether a channel result is for the attempt's amount and currency. The signature only says the channel sent
 * it: a correctly signed success for 0.01 USD, or for 50.00 EUR, must not capture a 50.00 USD order. A result
 * that is not is counted (the ChannelResultMismatch alarm) and logged with the amounts, never applied.
 */
export function carriesAttempt(attempt: Pick<PaymentAttempt, 'id' | 'amount' | 'currency'>, result: { amount: number; currency: string }, source: 'notification' | 'query'): boolean {
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

export function methodOf(order: PaymentOrder): 'card' | 'wallet' {
  return order.payment_method_details?.type === 'wallet' ? 'wallet' : 'card';
}
