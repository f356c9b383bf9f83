import { currency as currencyOf, toMajorString } from '../../commons/money';
import type { Secret } from '../../commons/secret';
import type {
  AuthorizeRequest,
  AuthorizeResult,
  CaptureResult,
  ChannelEvent,
  ChannelPayment,
  NotificationAck,
  RefundResult,
  VoidResult,
} from '../channel';
import { DECLINE_MESSAGES, type DeclineCode } from '../errors';
import type { MacSigner } from './signer';

/**
 * The sandbox PSP's wire format, and the only place that knows it (the Hyperswitch `transformers` layout).
 * Modelled on the Alipay Open Platform:
 * - requests and responses are flat snake_case parameters; `method` names the API (`sandbox.trade.pay`, …);
 * - amounts are decimal strings in the currency's major unit (`"19.99"` USD, `"500"` JPY);
 * - a response has `code` `10000` (success), `40004` (business failure, with `sub_code` / `sub_msg`) or
 *   `40002` (invalid parameters);
 * - asynchronous results are POSTed to `notify_url` as `application/x-www-form-urlencoded`, signed over
 *   every parameter except `sign` and `sign_type`, empty ones left out, sorted by key in ASCII order and
 *   joined as `k=v&k=v`. `sign_type` is `HMAC-SHA256` (a KMS HMAC_256 key) where Alipay uses RSA2;
 *   the receiver must answer the literal body `success`, or the sandbox delivers again.
 */

export const CHANNEL = 'sandbox';
export const SIGN_TYPE = 'HMAC-SHA256';
export const NOTIFY_TYPE = 'trade_status_sync';
/** Notifications older or newer than this (by `notify_time`) are refused, against replays. */
export const DEFAULT_NOTIFY_TOLERANCE_SECONDS = 300;

// ---- wire types ----------------------------------------------------------------------------------

export type TradeStatus =
  /** 3-D Secure challenge pending. */
  | 'WAIT_AUTHENTICATION'
  /** The bank is still deciding; the result comes by notification. */
  | 'WAIT_BANK'
  /** Authorized, not captured (capture_mode MANUAL). */
  | 'TRADE_AUTHORIZED'
  /** Paid (captured), possibly partly refunded. */
  | 'TRADE_SUCCESS'
  /** Declined; `sub_code` says why. */
  | 'TRADE_CLOSED'
  /** Authorization voided. */
  | 'TRADE_CANCELLED';

export type SubCode =
  | 'ACQ.CARD_DECLINED'
  | 'ACQ.INSUFFICIENT_FUNDS'
  | 'ACQ.EXPIRED_CARD'
  | 'ACQ.INCORRECT_CVC'
  | 'ACQ.INVALID_CARD_NO'
  | 'ACQ.INVALID_EXPIRY_MONTH'
  | 'ACQ.INVALID_CVC'
  | 'ACQ.AUTHENTICATION_FAILED'
  | 'ACQ.PROCESSING_ERROR'
  // request refusals: the trade is unchanged
  | 'ACQ.TRADE_NOT_EXIST'
  | 'ACQ.TRADE_STATUS_ERROR'
  | 'ACQ.AMOUNT_EXCEEDED'
  | 'ACQ.OUT_TRADE_NO_REUSED'
  | 'ACQ.REQUEST_NO_REUSED'
  | 'ACQ.CHALLENGE_MISMATCH'
  | 'ACQ.INVALID_PARAMETER';

export interface WireCard {
  card_no: string;
  /** `MM` */
  expiry_month: string;
  /** `YYYY` */
  expiry_year: string;
  cvv: string;
}

export interface PayRequest {
  method: 'sandbox.trade.pay';
  out_trade_no: string;
  total_amount: string;
  currency: string;
  capture_mode: 'AUTO' | 'MANUAL';
  pay_channel: 'CARD' | 'WALLET';
  /** In process only; a networked PSP would get these fields over TLS and nothing would keep them. */
  card?: Secret<WireCard>;
  notify_url: string;
  return_url?: string;
}

export interface AuthenticateRequest {
  method: 'sandbox.trade.authenticate';
  out_trade_no: string;
  challenge_id: string;
  auth_result: 'PASS' | 'FAIL';
}

export interface CaptureRequest {
  method: 'sandbox.trade.capture';
  trade_no: string;
  capture_amount: string;
}

export interface CancelRequest {
  method: 'sandbox.trade.cancel';
  trade_no: string;
}

export interface RefundRequest {
  method: 'sandbox.trade.refund';
  trade_no: string;
  out_request_no: string;
  refund_amount: string;
}

/** By the merchant's out_trade_no or the PSP's trade_no, as Alipay's trade.query. */
export type QueryRequest = { method: 'sandbox.trade.query' } & ({ out_trade_no: string; trade_no?: never } | { trade_no: string; out_trade_no?: never });

export type WireRequest = PayRequest | AuthenticateRequest | CaptureRequest | CancelRequest | RefundRequest | QueryRequest;

export interface WireRefund {
  out_request_no: string;
  refund_no: string;
  refund_amount: string;
  refund_status: 'REFUND_SUCCESS';
  gmt_refund: string;
}

/** A trade as the PSP shows it in responses. */
export interface WireTrade {
  trade_no: string;
  out_trade_no: string;
  trade_status: TradeStatus;
  total_amount: string;
  currency: string;
  authorized_amount: string;
  captured_amount: string;
  refunded_amount: string;
  /** For TRADE_CLOSED: why. */
  sub_code?: SubCode;
  sub_msg?: string;
  /** For WAIT_AUTHENTICATION. */
  challenge_id?: string;
  refunds: WireRefund[];
  seq: string;
  gmt_modified: string;
}

export type WireResponse =
  | ({ code: '10000'; msg: 'Success' } & WireTrade & { refund?: WireRefund })
  /** A decline: the trade exists, closed. */
  | ({ code: '40004'; msg: 'Business Failed'; sub_code: SubCode; sub_msg: string } & WireTrade)
  /** A refusal: nothing happened. */
  | { code: '40004' | '40002'; msg: 'Business Failed' | 'Invalid Arguments'; sub_code: SubCode; sub_msg: string };

export type NotificationParams = Record<string, string>;

// ---- amounts -------------------------------------------------------------------------------------

/** Minor units → the wire's major-unit decimal string: (1999, USD) → "19.99". */
export function toWireAmount(minor: number, currency: string): string {
  return toMajorString(minor, currency);
}

/** The wire's decimal string → minor units, without floating point. Throws RangeError when malformed. */
export function fromWireAmount(value: string, currency: string): number {
  const cur = currencyOf(currency);
  if (!cur) throw new RangeError(`unknown currency '${currency}'`);
  const match = /^(\d+)(?:\.(\d+))?$/.exec(value);
  if (!match || (match[2] ?? '').length > cur.exponent) {
    throw new RangeError(`'${value}' is not an amount in ${currency} (at most ${cur.exponent} decimals)`);
  }
  const minor = Number(match[1]! + (match[2] ?? '').padEnd(cur.exponent, '0'));
  if (!Number.isSafeInteger(minor)) throw new RangeError(`'${value}' is too large`);
  return minor;
}

// ---- platform → wire -----------------------------------------------------------------------------

export function toPayRequest(req: AuthorizeRequest, wrapCard: (card: WireCard) => Secret<WireCard>): PayRequest {
  const base = {
    method: 'sandbox.trade.pay' as const,
    out_trade_no: req.paymentId,
    total_amount: toWireAmount(req.amount, req.currency),
    currency: req.currency,
    capture_mode: req.capture ? ('AUTO' as const) : ('MANUAL' as const),
    notify_url: req.notifyUrl,
    return_url: req.returnUrl,
  };
  if (req.method.type === 'wallet') return { ...base, pay_channel: 'WALLET' };
  const card = req.method.card.reveal();
  return {
    ...base,
    pay_channel: 'CARD',
    card: wrapCard({
      card_no: card.number.replace(/[\s-]/g, ''),
      expiry_month: String(card.exp_month).padStart(2, '0'),
      expiry_year: String(card.exp_year < 100 ? 2000 + card.exp_year : card.exp_year),
      cvv: card.cvc,
    }),
  };
}

// ---- wire → platform -----------------------------------------------------------------------------

const DECLINES: Partial<Record<SubCode, DeclineCode>> = {
  'ACQ.CARD_DECLINED': 'card_declined',
  'ACQ.INSUFFICIENT_FUNDS': 'insufficient_funds',
  'ACQ.EXPIRED_CARD': 'expired_card',
  'ACQ.INCORRECT_CVC': 'incorrect_cvc',
  'ACQ.INVALID_CARD_NO': 'incorrect_number',
  'ACQ.INVALID_EXPIRY_MONTH': 'invalid_expiry_month',
  'ACQ.INVALID_CVC': 'invalid_cvc',
  'ACQ.AUTHENTICATION_FAILED': 'authentication_failed',
  'ACQ.PROCESSING_ERROR': 'processing_error',
};

export const DECLINE_SUB_CODES: Record<DeclineCode, SubCode> = Object.fromEntries(
  Object.entries(DECLINES).map(([sub, code]) => [code, sub]),
) as Record<DeclineCode, SubCode>;

/** The payer-facing message for each decline, as the PSP sends it in `sub_msg`. */
export function declineMessage(sub: SubCode): string {
  const code = DECLINES[sub];
  return code ? DECLINE_MESSAGES[code] : 'The payment was declined.';
}

/** Request refusals → the code of the ChannelRejectedError the connector throws. */
export const REFUSALS: Partial<Record<SubCode, string>> = {
  'ACQ.TRADE_NOT_EXIST': 'no_such_payment',
  'ACQ.TRADE_STATUS_ERROR': 'invalid_payment_state',
  'ACQ.AMOUNT_EXCEEDED': 'amount_too_large',
  'ACQ.OUT_TRADE_NO_REUSED': 'id_reused',
  'ACQ.REQUEST_NO_REUSED': 'id_reused',
  'ACQ.CHALLENGE_MISMATCH': 'invalid_challenge',
  'ACQ.INVALID_PARAMETER': 'invalid_parameter',
};

export function hasTrade(res: WireResponse): res is Extract<WireResponse, { trade_no: string }> {
  return 'trade_no' in res;
}

function statusOf(tradeStatus: TradeStatus): ChannelPayment['status'] {
  switch (tradeStatus) {
    case 'WAIT_AUTHENTICATION':
      return 'requires_action';
    case 'WAIT_BANK':
      return 'processing';
    case 'TRADE_AUTHORIZED':
      return 'requires_capture';
    case 'TRADE_SUCCESS':
      return 'succeeded';
    case 'TRADE_CLOSED':
      return 'failed';
    case 'TRADE_CANCELLED':
      return 'canceled';
  }
}

function failure(trade: { sub_code?: SubCode; sub_msg?: string }): { declineCode: DeclineCode; message: string } {
  const sub = trade.sub_code ?? 'ACQ.CARD_DECLINED';
  return { declineCode: DECLINES[sub] ?? 'card_declined', message: trade.sub_msg ?? declineMessage(sub) };
}

/** A trade as an authorize / completeAction answer. A voided trade reads as failed: it can no longer be paid. */
export function toAuthorizeResult(trade: WireTrade): AuthorizeResult {
  const status = statusOf(trade.trade_status);
  if (status === 'failed' || status === 'canceled') {
    return {
      status: 'failed',
      channelRef: trade.trade_no,
      ...(status === 'canceled' ? { message: 'The authorization was canceled.' } : failure(trade)),
    };
  }
  if (status === 'requires_action') {
    return { status, channelRef: trade.trade_no, action: { type: 'three_d_secure', challengeId: trade.challenge_id ?? '' } };
  }
  return { status, channelRef: trade.trade_no };
}

export function toChannelPayment(trade: WireTrade): ChannelPayment {
  const status = statusOf(trade.trade_status);
  const amount = (v: string) => fromWireAmount(v, trade.currency);
  return {
    paymentId: trade.out_trade_no,
    channelRef: trade.trade_no,
    status,
    amount: amount(trade.total_amount),
    currency: trade.currency,
    amountAuthorized: amount(trade.authorized_amount),
    amountCaptured: amount(trade.captured_amount),
    amountRefunded: amount(trade.refunded_amount),
    ...(status === 'failed' ? failure(trade) : {}),
    ...(status === 'requires_action' ? { action: { type: 'three_d_secure' as const, challengeId: trade.challenge_id ?? '' } } : {}),
    refunds: trade.refunds.map((r) => ({
      refundId: r.out_request_no,
      refundRef: r.refund_no,
      amount: amount(r.refund_amount),
      status: 'succeeded' as const,
    })),
    sequence: Number(trade.seq),
    updatedAt: trade.gmt_modified,
  };
}

export function toCaptureResult(trade: WireTrade): CaptureResult {
  const captured = fromWireAmount(trade.captured_amount, trade.currency);
  return { status: 'succeeded', amountCaptured: captured, amountReleased: fromWireAmount(trade.authorized_amount, trade.currency) - captured };
}

export function toVoidResult(trade: WireTrade): VoidResult {
  return { status: 'canceled', amountReleased: fromWireAmount(trade.authorized_amount, trade.currency) };
}

export function toRefundResult(refund: WireRefund, currency: string): RefundResult {
  return { status: 'succeeded', refundRef: refund.refund_no, amount: fromWireAmount(refund.refund_amount, currency) };
}

// ---- notifications -------------------------------------------------------------------------------

/** The trade statuses a notification reports (the others are not results). */
export function notifiable(status: TradeStatus): boolean {
  return status !== 'WAIT_AUTHENTICATION' && status !== 'WAIT_BANK';
}

/** The unsigned notification for a trade's current state. `notify_id` is stable per (trade, seq). */
export function notificationParams(trade: WireTrade, notifyTime: Date): NotificationParams {
  const params: NotificationParams = {
    notify_id: `ntf_${trade.trade_no}_${trade.seq}`,
    notify_type: NOTIFY_TYPE,
    notify_time: notifyTime.toISOString(),
    out_trade_no: trade.out_trade_no,
    trade_no: trade.trade_no,
    trade_status: trade.trade_status,
    total_amount: trade.total_amount,
    currency: trade.currency,
    captured_amount: trade.captured_amount,
    seq: trade.seq,
    gmt_event: trade.gmt_modified,
  };
  if (trade.trade_status === 'TRADE_CLOSED') {
    params.sub_code = trade.sub_code ?? 'ACQ.CARD_DECLINED';
    params.sub_msg = trade.sub_msg ?? declineMessage(params.sub_code as SubCode);
  }
  return params;
}

/** Alipay's string to sign: all parameters but `sign` / `sign_type` and empty ones, sorted by key (ASCII), `k=v&k=v`. */
export function signingString(params: NotificationParams): string {
  return Object.keys(params)
    .filter((k) => k !== 'sign' && k !== 'sign_type' && params[k] !== '' && params[k] !== undefined)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => `${k}=${params[k]}`)
    .join('&');
}

/** Signs and form-encodes a notification: the exact body the sandbox POSTs. */
export async function signedNotificationBody(params: NotificationParams, signer: MacSigner): Promise<string> {
  const mac = await signer.sign(Buffer.from(signingString(params), 'utf8'));
  return new URLSearchParams({ ...params, sign_type: SIGN_TYPE, sign: Buffer.from(mac).toString('base64') }).toString();
}

export const NOTIFICATION_CONTENT_TYPE = 'application/x-www-form-urlencoded; charset=utf-8';

export class NotificationRejected extends Error {
  constructor(
    readonly reason: 'malformed' | 'bad_signature' | 'stale',
    message: string,
  ) {
    super(message);
    this.name = 'NotificationRejected';
  }
}

const REQUIRED = ['notify_id', 'notify_type', 'notify_time', 'out_trade_no', 'trade_no', 'trade_status', 'total_amount', 'currency', 'seq', 'gmt_event', 'sign_type', 'sign'] as const;

/**
 * Decodes and verifies a notification body. Throws NotificationRejected: `malformed` (not the format),
 * `bad_signature`, or `stale` (notify_time outside the tolerance). The signature is checked before any
 * field is interpreted.
 */
export async function verifyNotification(
  rawBody: string | Uint8Array,
  signer: MacSigner,
  opts: { now: Date; toleranceSeconds?: number },
): Promise<ChannelEvent> {
  const text = typeof rawBody === 'string' ? rawBody : Buffer.from(rawBody).toString('utf8');
  const params: NotificationParams = {};
  for (const [k, v] of new URLSearchParams(text)) {
    if (k in params) throw new NotificationRejected('malformed', `parameter '${k}' appears twice`);
    params[k] = v;
  }
  const missing = REQUIRED.filter((k) => !params[k]);
  if (missing.length) throw new NotificationRejected('malformed', `missing parameters: ${missing.join(', ')}`);
  if (params.sign_type !== SIGN_TYPE) throw new NotificationRejected('malformed', `sign_type '${params.sign_type}' is not ${SIGN_TYPE}`);
  const mac = Buffer.from(params.sign!, 'base64');
  if (mac.length === 0 || !(await signer.verify(Buffer.from(signingString(params), 'utf8'), mac))) {
    throw new NotificationRejected('bad_signature', 'the signature does not verify');
  }
  const sentAt = Date.parse(params.notify_time!);
  const tolerance = (opts.toleranceSeconds ?? DEFAULT_NOTIFY_TOLERANCE_SECONDS) * 1000;
  if (!Number.isFinite(sentAt) || Math.abs(opts.now.getTime() - sentAt) > tolerance) {
    throw new NotificationRejected('stale', `notify_time ${params.notify_time} is more than ${tolerance / 1000} s from now`);
  }
  if (params.notify_type !== NOTIFY_TYPE) throw new NotificationRejected('malformed', `notify_type '${params.notify_type}' is unknown`);
  const status = params.trade_status as TradeStatus;
  if (!['TRADE_AUTHORIZED', 'TRADE_SUCCESS', 'TRADE_CLOSED', 'TRADE_CANCELLED'].includes(status)) {
    throw new NotificationRejected('malformed', `trade_status '${status}' is not a result`);
  }
  const sequence = Number(params.seq);
  if (!Number.isSafeInteger(sequence) || sequence < 1) throw new NotificationRejected('malformed', `seq '${params.seq}' is not a positive integer`);
  if (!Number.isFinite(Date.parse(params.gmt_event!))) throw new NotificationRejected('malformed', `gmt_event '${params.gmt_event}' is not a time`);
  let amount: number;
  try {
    amount = fromWireAmount(params.total_amount!, params.currency!);
  } catch (error) {
    throw new NotificationRejected('malformed', (error as Error).message);
  }
  const mapped = statusOf(status);
  return {
    eventId: params.notify_id!,
    paymentId: params.out_trade_no!,
    channelRef: params.trade_no!,
    status: mapped as ChannelEvent['status'], // never requires_action / processing: checked above
    ...(mapped === 'failed' ? failure({ sub_code: params.sub_code as SubCode | undefined, sub_msg: params.sub_msg }) : {}),
    amount,
    currency: params.currency!,
    sequence,
    occurredAt: new Date(Date.parse(params.gmt_event!)).toISOString(),
  };
}

/** What the sandbox counts as delivered: HTTP 200 with the literal body `success` (surrounding whitespace allowed). */
export function isSuccessAck(statusCode: number, body: string): boolean {
  return statusCode === 200 && body.trim() === 'success';
}

/** The answer the sandbox expects, as Alipay: `success`, or anything else (here `fail`) to be sent again. */
export function notificationAck(ok: boolean): NotificationAck {
  return {
    statusCode: ok ? 200 : 400,
    headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    body: ok ? 'success' : 'fail',
  };
}
