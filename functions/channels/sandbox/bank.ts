import { randomBase62 } from '../../commons/ids';
import { currency as currencyOf, MAX_AMOUNT } from '../../commons/money';
import { cardBrand, last4 } from '../cards';
import { sandboxEnv } from './aws';
import type { CallbackQueue } from './queue';
import type { StoredRefund, TradeRecord, TradeRecords } from './store';
import { cardScenario, type Scenario } from './test-cards';
import {
  declineMessage,
  fromWireAmount,
  toWireAmount,
  type AuthenticateRequest,
  type CancelRequest,
  type CaptureRequest,
  type PayRequest,
  type QueryRequest,
  type RefundRequest,
  type SubCode,
  type WireRefund,
  type WireRequest,
  type WireResponse,
  type WireTrade,
} from './transformers';

/**
 * The other side of the wire: a simulated PSP that speaks the sandbox wire format (transformers.ts)
 * and keeps its own record of every trade (store.ts). It behaves as a real PSP does towards its
 * merchants: every request is idempotent on out_trade_no / out_request_no, a repeated request with
 * other parameters is refused, results it reaches later are delivered by notification (queue.ts →
 * notifier.ts), and a lost answer (`SandboxTimeout`) leaves the trade recorded for `query`.
 */

/** The request reached the bank and was processed, but its answer never came back. */
export class SandboxTimeout extends Error {
  constructor(readonly method: string) {
    super(`${method}: no answer within the timeout (the request was processed)`);
    this.name = 'SandboxTimeout';
  }
}

export interface BankDeps {
  store: TradeRecords;
  queue: CallbackQueue;
  now?: () => Date;
  /** Seconds until an asynchronous result; default SANDBOX_CALLBACK_DELAY_SECONDS (2). */
  callbackDelaySeconds?: () => number;
}

class Refusal {
  constructor(
    readonly subCode: SubCode,
    readonly message: string,
    readonly code: '40004' | '40002' = '40004',
  ) {}
}

const invalid = (message: string) => new Refusal('ACQ.INVALID_PARAMETER', message, '40002');

/** Attempts at a conditional write that lost to a concurrent one before giving up. */
const MAX_RACES = 5;

export class SandboxBank {
  private readonly store: TradeRecords;
  private readonly queue: CallbackQueue;
  private readonly now: () => Date;
  private readonly delay: () => number;

  constructor(deps: BankDeps) {
    this.store = deps.store;
    this.queue = deps.queue;
    this.now = deps.now ?? (() => new Date());
    this.delay = deps.callbackDelaySeconds ?? (() => sandboxEnv('SANDBOX_CALLBACK_DELAY_SECONDS'));
  }

  async handle(req: WireRequest): Promise<WireResponse> {
    try {
      switch (req.method) {
        case 'sandbox.trade.pay':
          return await this.pay(req);
        case 'sandbox.trade.authenticate':
          return await this.authenticate(req);
        case 'sandbox.trade.capture':
          return await this.capture(req);
        case 'sandbox.trade.cancel':
          return await this.cancel(req);
        case 'sandbox.trade.refund':
          return await this.refund(req);
        case 'sandbox.trade.query':
          return await this.query(req);
        default:
          throw invalid(`unknown method '${(req as { method?: unknown }).method}'`);
      }
    } catch (error) {
      if (error instanceof Refusal) {
        return { code: error.code, msg: error.code === '40002' ? 'Invalid Arguments' : 'Business Failed', sub_code: error.subCode, sub_msg: error.message };
      }
      throw error;
    }
  }

  /** For the notifier: the trade now, with a due asynchronous result settled first. */
  async resultFor(outTradeNo: string): Promise<{ trade: WireTrade; notifyUrl: string } | undefined> {
    const found = await this.store.get(outTradeNo);
    if (!found) return undefined;
    const trade = found.trade_status === 'WAIT_BANK' ? await this.settle(found) : found;
    return { trade: toWire(trade), notifyUrl: trade.notify_url };
  }

  // ---- operations ------------------------------------------------------------------------------

  private async pay(req: PayRequest): Promise<WireResponse> {
    if (!/^[\w.:-]{1,128}$/.test(req.out_trade_no ?? '')) throw invalid('out_trade_no must be 1-128 letters, digits, _ . : -');
    if (!currencyOf(req.currency)) throw invalid(`currency '${req.currency}' is not supported`);
    const amount = parseAmount(req.total_amount, req.currency, 'total_amount');
    if (req.pay_channel === 'CARD' && !req.card) throw invalid('card is required when pay_channel is CARD');
    if (!/^https?:\/\//.test(req.notify_url ?? '')) throw invalid('notify_url must be an http(s) URL');
    const card = req.pay_channel === 'CARD' ? req.card!.reveal() : undefined;

    const existing = await this.store.get(req.out_trade_no);
    if (existing) return this.repeatPay(existing, req, amount, card?.card_no);

    const now = this.now();
    const scenario: Scenario = card ? cardScenario(card, now) : { kind: 'async', result: 'SUCCESS' };
    const trade = newTrade(req, amount, card?.card_no, scenario, now, this.delay());
    const created = await this.store.create(trade);
    if (!created.created) return this.repeatPay(created.existing, req, amount, card?.card_no);

    if (scenario.kind === 'async') await this.schedule(trade, this.delay());
    if (scenario.kind === 'timeout') {
      // The PSP also notifies the result it reached, as Alipay does for every paid trade.
      await this.schedule(trade, this.delay());
      throw new SandboxTimeout(req.method);
    }
    return respond(trade);
  }

  /** Same out_trade_no again: the same answer if the request is the same, a refusal if not. */
  private async repeatPay(existing: TradeRecord, req: PayRequest, amount: number, pan: string | undefined): Promise<WireResponse> {
    const same =
      existing.total_amount === amount &&
      existing.currency === req.currency &&
      existing.capture_mode === req.capture_mode &&
      existing.pay_channel === req.pay_channel &&
      existing.card_last4 === (pan ? last4(pan) : undefined);
    if (!same) {
      throw new Refusal('ACQ.OUT_TRADE_NO_REUSED', `out_trade_no '${req.out_trade_no}' was already used for a different payment`);
    }
    const trade = await this.settleIfDue(existing);
    // Still deciding: schedule the result again, in case the first job was lost (duplicates are harmless).
    if (trade.trade_status === 'WAIT_BANK') await this.schedule(trade, secondsUntil(trade.settle_at, this.now()));
    return respond(trade);
  }

  private async authenticate(req: AuthenticateRequest): Promise<WireResponse> {
    for (let race = 0; race < MAX_RACES; race++) {
      const trade = await this.trade(req.out_trade_no);
      if (trade.challenge_id !== req.challenge_id || !req.challenge_id) {
        throw new Refusal('ACQ.CHALLENGE_MISMATCH', `challenge '${req.challenge_id}' is not the challenge of trade ${trade.trade_no}`);
      }
      // Already decided (or abandoned): the first decision stands.
      if (trade.trade_status !== 'WAIT_AUTHENTICATION') return respond(trade);
      const set: Partial<TradeRecord> =
        req.auth_result === 'PASS'
          ? approved(trade)
          : { trade_status: 'TRADE_CLOSED', sub_code: 'ACQ.AUTHENTICATION_FAILED', sub_msg: declineMessage('ACQ.AUTHENTICATION_FAILED') };
      const result = await this.store.transition(trade.out_trade_no, ['WAIT_AUTHENTICATION'], set, this.now());
      if (result.ok) return respond(result.trade);
    }
    throw new Error(`authenticate ${req.out_trade_no}: lost ${MAX_RACES} races`);
  }

  private async capture(req: CaptureRequest): Promise<WireResponse> {
    for (let race = 0; race < MAX_RACES; race++) {
      const trade = await this.tradeByNo(req.trade_no);
      const amount = parseAmount(req.capture_amount, trade.currency, 'capture_amount');
      if (trade.trade_status === 'TRADE_SUCCESS' && trade.captured_by === 'CAPTURE' && trade.captured_amount === amount) return respond(trade);
      if (trade.trade_status !== 'TRADE_AUTHORIZED') throw statusError(trade, 'captured');
      if (amount > trade.authorized_amount) {
        throw new Refusal('ACQ.AMOUNT_EXCEEDED', `capture_amount ${req.capture_amount} is more than the authorized ${toWireAmount(trade.authorized_amount, trade.currency)}`);
      }
      const result = await this.store.transition(
        trade.out_trade_no,
        ['TRADE_AUTHORIZED'],
        { trade_status: 'TRADE_SUCCESS', captured_amount: amount, refundable_amount: amount, captured_by: 'CAPTURE' },
        this.now(),
      );
      if (result.ok) return respond(result.trade);
    }
    throw new Error(`capture ${req.trade_no}: lost ${MAX_RACES} races`);
  }

  private async cancel(req: CancelRequest): Promise<WireResponse> {
    for (let race = 0; race < MAX_RACES; race++) {
      const trade = await this.tradeByNo(req.trade_no);
      if (trade.trade_status === 'TRADE_CANCELLED') return respond(trade);
      if (trade.trade_status !== 'TRADE_AUTHORIZED' && trade.trade_status !== 'WAIT_AUTHENTICATION') throw statusError(trade, 'cancelled');
      const result = await this.store.transition(trade.out_trade_no, ['TRADE_AUTHORIZED', 'WAIT_AUTHENTICATION'], { trade_status: 'TRADE_CANCELLED' }, this.now());
      if (result.ok) return respond(result.trade);
    }
    throw new Error(`cancel ${req.trade_no}: lost ${MAX_RACES} races`);
  }

  private async refund(req: RefundRequest): Promise<WireResponse> {
    if (!/^[\w.:-]{1,128}$/.test(req.out_request_no ?? '')) throw invalid('out_request_no must be 1-128 letters, digits, _ . : -');
    for (let race = 0; race < MAX_RACES; race++) {
      const trade = await this.tradeByNo(req.trade_no);
      const amount = parseAmount(req.refund_amount, trade.currency, 'refund_amount');
      const earlier = trade.refunds[req.out_request_no];
      if (earlier) {
        if (earlier.amount !== amount) {
          throw new Refusal('ACQ.REQUEST_NO_REUSED', `out_request_no '${req.out_request_no}' was already used to refund ${toWireAmount(earlier.amount, trade.currency)}`);
        }
        return respond(trade, refundView(req.out_request_no, earlier, trade.currency));
      }
      if (trade.trade_status !== 'TRADE_SUCCESS') throw statusError(trade, 'refunded');
      if (amount > trade.refundable_amount) {
        throw new Refusal(
          'ACQ.AMOUNT_EXCEEDED',
          `refund_amount ${req.refund_amount} is more than the ${toWireAmount(trade.refundable_amount, trade.currency)} left to refund`,
        );
      }
      const now = this.now();
      const refund: StoredRefund = { refund_no: tradeNo('RF', now), amount, status: 'REFUND_SUCCESS', gmt_refund: now.toISOString() };
      const result = await this.store.addRefund(trade.out_trade_no, req.out_request_no, refund, now);
      if (result.ok) return respond(result.trade, refundView(req.out_request_no, refund, trade.currency));
    }
    throw new Error(`refund ${req.trade_no}: lost ${MAX_RACES} races`);
  }

  private async query(req: QueryRequest): Promise<WireResponse> {
    const trade = req.trade_no !== undefined ? await this.tradeByNo(req.trade_no) : await this.trade(req.out_trade_no);
    return respond(await this.settleIfDue(trade));
  }

  // ---- helpers -----------------------------------------------------------------------------------

  private async trade(outTradeNo: string): Promise<TradeRecord> {
    const trade = await this.store.get(outTradeNo);
    if (!trade) throw new Refusal('ACQ.TRADE_NOT_EXIST', `no trade with out_trade_no '${outTradeNo}'`);
    return trade;
  }

  private async tradeByNo(tradeNo: string): Promise<TradeRecord> {
    const trade = await this.store.getByTradeNo(tradeNo);
    if (!trade) throw new Refusal('ACQ.TRADE_NOT_EXIST', `no trade with trade_no '${tradeNo}'`);
    return trade;
  }

  private async schedule(trade: TradeRecord, delaySeconds: number): Promise<void> {
    await this.queue.enqueue({ v: 1, out_trade_no: trade.out_trade_no }, delaySeconds);
  }

  /**
   * The bank finishes thinking at settle_at whether or not its callback job ran, so a query after that
   * time gets the result even if the notification is lost.
   */
  private async settleIfDue(trade: TradeRecord): Promise<TradeRecord> {
    if (trade.trade_status !== 'WAIT_BANK' || Date.parse(trade.settle_at ?? '') > this.now().getTime()) return trade;
    return this.settle(trade);
  }

  private async settle(trade: TradeRecord): Promise<TradeRecord> {
    const set: Partial<TradeRecord> =
      trade.pending_result === 'FAILURE'
        ? { trade_status: 'TRADE_CLOSED', sub_code: 'ACQ.CARD_DECLINED', sub_msg: declineMessage('ACQ.CARD_DECLINED') }
        : approved(trade);
    const result = await this.store.transition(trade.out_trade_no, ['WAIT_BANK'], set, this.now());
    if (result.ok) return result.trade;
    return result.current ?? trade; // settled concurrently: theirs is the same decision
  }
}

// ---- records and views -------------------------------------------------------------------------

function parseAmount(value: string, currency: string, field: string): number {
  let amount: number;
  try {
    amount = fromWireAmount(value, currency);
  } catch (error) {
    throw invalid(`${field}: ${(error as Error).message}`);
  }
  if (amount <= 0 || amount > MAX_AMOUNT) throw invalid(`${field} ${value} must be more than 0 and at most ${toWireAmount(MAX_AMOUNT, currency)}`);
  return amount;
}

function statusError(trade: TradeRecord, verb: string): Refusal {
  return new Refusal('ACQ.TRADE_STATUS_ERROR', `trade ${trade.trade_no} is ${trade.trade_status} and cannot be ${verb}`);
}

/** The fields of an approved trade, captured at once or not by its capture mode. */
function approved(trade: Pick<TradeRecord, 'capture_mode' | 'total_amount'>): Partial<TradeRecord> {
  return trade.capture_mode === 'AUTO'
    ? {
        trade_status: 'TRADE_SUCCESS',
        authorized_amount: trade.total_amount,
        captured_amount: trade.total_amount,
        refundable_amount: trade.total_amount,
        captured_by: 'AUTO',
      }
    : { trade_status: 'TRADE_AUTHORIZED', authorized_amount: trade.total_amount };
}

/** `SB` + yyyymmdd + 20 base62: sortable by day, unguessable, like a PSP's trade number. */
function tradeNo(prefix: string, now: Date): string {
  return `${prefix}${now.toISOString().slice(0, 10).replaceAll('-', '')}${randomBase62(20)}`;
}

function newTrade(req: PayRequest, amount: number, pan: string | undefined, scenario: Scenario, now: Date, delaySeconds: number): TradeRecord {
  const base: TradeRecord = {
    out_trade_no: req.out_trade_no,
    trade_no: tradeNo('SB', now),
    currency: req.currency,
    total_amount: amount,
    capture_mode: req.capture_mode,
    pay_channel: req.pay_channel,
    ...(pan ? { card_brand: cardBrand(pan), card_last4: last4(pan) } : {}),
    trade_status: 'WAIT_BANK',
    authorized_amount: 0,
    captured_amount: 0,
    refundable_amount: 0,
    refunded_amount: 0,
    refunds: {},
    notify_url: req.notify_url,
    ...(req.return_url ? { return_url: req.return_url } : {}),
    seq: 1,
    gmt_create: now.toISOString(),
    gmt_modified: now.toISOString(),
  };
  switch (scenario.kind) {
    case 'approve':
    case 'timeout':
      return { ...base, ...approved(base) };
    case 'decline':
      return { ...base, trade_status: 'TRADE_CLOSED', sub_code: scenario.subCode, sub_msg: declineMessage(scenario.subCode) };
    case 'challenge':
      return { ...base, trade_status: 'WAIT_AUTHENTICATION', challenge_id: `chl_${randomBase62(24)}` };
    case 'async':
      return { ...base, pending_result: scenario.result, settle_at: new Date(now.getTime() + delaySeconds * 1000).toISOString() };
  }
}

function secondsUntil(iso: string | undefined, now: Date): number {
  return Math.max(0, Math.ceil((Date.parse(iso ?? '') - now.getTime()) / 1000) || 0);
}

function refundView(outRequestNo: string, refund: StoredRefund, currency: string): WireRefund {
  return {
    out_request_no: outRequestNo,
    refund_no: refund.refund_no,
    refund_amount: toWireAmount(refund.amount, currency),
    refund_status: refund.status,
    gmt_refund: refund.gmt_refund,
  };
}

export function toWire(trade: TradeRecord): WireTrade {
  const amount = (minor: number) => toWireAmount(minor, trade.currency);
  return {
    trade_no: trade.trade_no,
    out_trade_no: trade.out_trade_no,
    trade_status: trade.trade_status,
    total_amount: amount(trade.total_amount),
    currency: trade.currency,
    authorized_amount: amount(trade.authorized_amount),
    captured_amount: amount(trade.captured_amount),
    refunded_amount: amount(trade.refunded_amount),
    ...(trade.trade_status === 'TRADE_CLOSED' ? { sub_code: trade.sub_code, sub_msg: trade.sub_msg } : {}),
    ...(trade.challenge_id ? { challenge_id: trade.challenge_id } : {}),
    refunds: Object.entries(trade.refunds ?? {})
      .map(([id, r]) => refundView(id, r, trade.currency))
      .sort((a, b) => (a.gmt_refund < b.gmt_refund ? -1 : 1)),
    seq: String(trade.seq),
    gmt_modified: trade.gmt_modified,
  };
}

/** A trade as a response: `10000`, or `40004` with the decline for a closed one. */
function respond(trade: TradeRecord, refund?: WireRefund): WireResponse {
  const view = toWire(trade);
  if (trade.trade_status === 'TRADE_CLOSED') {
    const subCode = trade.sub_code ?? 'ACQ.CARD_DECLINED';
    return { code: '40004', msg: 'Business Failed', ...view, sub_code: subCode, sub_msg: trade.sub_msg ?? declineMessage(subCode) };
  }
  return { code: '10000', msg: 'Success', ...view, ...(refund ? { refund } : {}) };
}
