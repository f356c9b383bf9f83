import { Secret } from '../../commons/secret';
import type {
  AuthorizeRequest,
  AuthorizeResult,
  CaptureResult,
  ChallengeOutcome,
  ChannelEvent,
  ChannelPayment,
  NotificationAck,
  PaymentChannel,
  RefundResult,
  VoidResult,
} from '../channel';
import { ChannelRejectedError, ChannelSignatureError, ChannelTimeoutError, ChannelUnavailableError } from '../errors';
import { kms, sandboxEnv } from './aws';
import { SandboxBank, SandboxTimeout } from './bank';
import { SqsCallbackQueue } from './queue';
import { KmsMacSigner, type MacSigner } from './signer';
import { TradeStore } from './store';
import { TEST_CARDS } from './test-cards';
import {
  CHANNEL,
  hasTrade,
  NotificationRejected,
  notificationAck,
  REFUSALS,
  toAuthorizeResult,
  toCaptureResult,
  toChannelPayment,
  toPayRequest,
  toRefundResult,
  toVoidResult,
  toWireAmount,
  verifyNotification,
  type WireRequest,
  type WireResponse,
  type WireTrade,
} from './transformers';

export interface SandboxChannelDeps {
  bank: SandboxBank;
  /** Verifies notifications (the notify handler needs kms:VerifyMac only). */
  signer: MacSigner;
  now?: () => Date;
  /** How far notify_time may be from now; default 300 s. */
  notifyToleranceSeconds?: number;
}

/**
 * The sandbox channel: the platform's side of the sandbox PSP's wire (the Hyperswitch "connector").
 * It turns platform requests into wire requests, sends them to the sandbox bank, and turns the answers
 * (and the bank's failures) back into platform terms and ChannelErrors. It holds no state of its own.
 */
export class SandboxChannel implements PaymentChannel {
  readonly id = CHANNEL;
  readonly publishedTestCards = new Set(TEST_CARDS.map((card) => card.number));
  private readonly now: () => Date;

  constructor(private readonly deps: SandboxChannelDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  /** As deployed: the main table, the SQS callback queue and the KMS signing key, all from the environment. */
  static fromEnv(): SandboxChannel {
    const store = new TradeStore();
    return new SandboxChannel({
      bank: new SandboxBank({ store, queue: new SqsCallbackQueue() }),
      signer: new KmsMacSigner(() => sandboxEnv('SANDBOX_SIGNING_KEY_ARN'), kms),
    });
  }

  async authorize(request: AuthorizeRequest): Promise<AuthorizeResult> {
    return toAuthorizeResult(this.trade(await this.send(toPayRequest(request, (card) => new Secret(card)))));
  }

  async completeAction(paymentId: string, challengeId: string, outcome: ChallengeOutcome): Promise<AuthorizeResult> {
    const res = await this.send({
      method: 'sandbox.trade.authenticate',
      out_trade_no: paymentId,
      challenge_id: challengeId,
      auth_result: outcome === 'approve' ? 'PASS' : 'FAIL',
    });
    return toAuthorizeResult(this.trade(res));
  }

  async capture(channelRef: string, amount: number): Promise<CaptureResult> {
    const currency = await this.currencyOf(channelRef);
    const res = await this.send({ method: 'sandbox.trade.capture', trade_no: channelRef, capture_amount: toWireAmount(amount, currency) });
    return toCaptureResult(this.trade(res));
  }

  async void(channelRef: string): Promise<VoidResult> {
    return toVoidResult(this.trade(await this.send({ method: 'sandbox.trade.cancel', trade_no: channelRef })));
  }

  async refund(channelRef: string, refundId: string, amount: number): Promise<RefundResult> {
    const currency = await this.currencyOf(channelRef);
    const res = await this.send({
      method: 'sandbox.trade.refund',
      trade_no: channelRef,
      out_request_no: refundId,
      refund_amount: toWireAmount(amount, currency),
    });
    const trade = this.trade(res);
    if (!('refund' in res) || !res.refund) throw new ChannelUnavailableError(CHANNEL, `sandbox refund ${refundId}: the answer has no refund`);
    return toRefundResult(res.refund, trade.currency);
  }

  async query(paymentId: string): Promise<ChannelPayment | undefined> {
    const res = await this.send({ method: 'sandbox.trade.query', out_trade_no: paymentId });
    if (!hasTrade(res) && res.sub_code === 'ACQ.TRADE_NOT_EXIST') return undefined;
    return toChannelPayment(this.trade(res));
  }

  async parseNotification(headers: Record<string, string | undefined>, rawBody: string | Uint8Array): Promise<ChannelEvent> {
    const contentType = Object.entries(headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1];
    if (contentType !== undefined && !contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      throw new ChannelSignatureError(CHANNEL, 'invalid_notification', `Sandbox notifications are application/x-www-form-urlencoded, not '${contentType}'.`);
    }
    try {
      return await verifyNotification(rawBody, this.deps.signer, { now: this.now(), toleranceSeconds: this.deps.notifyToleranceSeconds });
    } catch (error) {
      if (!(error instanceof NotificationRejected)) throw error;
      const code = { malformed: 'invalid_notification', bad_signature: 'invalid_signature', stale: 'stale_notification' }[error.reason];
      throw new ChannelSignatureError(CHANNEL, code, `Sandbox notification refused: ${error.message}.`, { cause: error });
    }
  }

  notificationAck(ok: boolean): NotificationAck {
    return notificationAck(ok);
  }

  // ---- transport ---------------------------------------------------------------------------------

  /** One request over the "wire". Anything but an answer is unavailability, with the outcome unknown. */
  private async send(req: WireRequest): Promise<WireResponse> {
    try {
      return await this.deps.bank.handle(req);
    } catch (error) {
      if (error instanceof SandboxTimeout) {
        throw new ChannelTimeoutError(CHANNEL, `The sandbox channel did not answer ${req.method} in time; it may have acted. Query the payment before deciding.`, {
          cause: error,
        });
      }
      throw new ChannelUnavailableError(CHANNEL, `The sandbox channel failed on ${req.method}: ${(error as Error).message}`, { cause: error, outcomeUnknown: true });
    }
  }

  /** The trade in an answer, or the refusal as a ChannelRejectedError. */
  private trade(res: WireResponse): WireTrade {
    if (hasTrade(res)) return res;
    throw new ChannelRejectedError(CHANNEL, REFUSALS[res.sub_code] ?? 'rejected', `The sandbox channel refused the request: ${res.sub_msg} (${res.sub_code}).`);
  }

  /**
   * Capture and refund amounts travel in major units, so they need the trade's currency, which the
   * interface does not pass: one query by trade_no first (a refusal, e.g. an unknown ref, surfaces here).
   */
  private async currencyOf(channelRef: string): Promise<string> {
    const trade = this.trade(await this.send({ method: 'sandbox.trade.query', trade_no: channelRef }));
    return trade.currency;
  }
}

export { SandboxBank } from './bank';
export { HmacSigner, KmsMacSigner, type MacSigner } from './signer';
export { SqsCallbackQueue, type CallbackQueue, type CallbackJob } from './queue';
export { TradeStore } from './store';
export { TEST_CARDS } from './test-cards';
