import { PayplaneError, type ErrorDetails } from '../commons/errors';

/**
 * What a channel can throw, as part of the one error hierarchy (commons/errors.ts), so that
 * functions/http/errors.ts maps these to HTTP like any other PayplaneError.
 *
 * The split that matters to the platform:
 * - a decline is an answer: the channel looked at the card and said no. Channels *return* declines
 *   (`status: 'failed', declineCode`) because they are recorded outcomes that `query()` and duplicate
 *   calls repeat; `CardDeclinedError.of(result)` turns one into the merchant-facing 402.
 * - `ChannelUnavailableError` is no answer. When `outcomeUnknown` is true the channel may have acted
 *   (a timeout after sending), so the platform must `query()` before it decides or retries with a new
 *   attempt; retrying with the *same* paymentId is always safe, since channels are idempotent on it.
 * - `ChannelRejectedError`: the channel refused the request itself (capture above the authorized amount,
 *   refund above the captured amount, an id reused with other parameters). It did nothing.
 * - `ChannelSignatureError`: a notification that does not verify; nothing in it may be trusted.
 */
export abstract class ChannelError extends PayplaneError {
  /** True when the channel may have acted although no answer came back: query before deciding. */
  readonly outcomeUnknown: boolean = false;

  constructor(
    readonly channel: string,
    code: string,
    message: string,
    details: ErrorDetails = {},
  ) {
    super(code, message, details);
  }
}

/** Stripe-like decline codes. A card error's `code` is one of the first four names or `card_declined`. */
export const DECLINE_CODES = [
  'card_declined',
  'insufficient_funds',
  'expired_card',
  'incorrect_cvc',
  'incorrect_number',
  'invalid_expiry_month',
  'invalid_cvc',
  'authentication_failed',
  'processing_error',
  /** The platform's card-testing limit (payments/velocity.ts): the channel never saw the attempt. */
  'card_velocity_exceeded',
] as const;
export type DeclineCode = (typeof DECLINE_CODES)[number];

/** Stripe reports these as the error code itself; every other decline is code `card_declined` + `decline_code`. */
const OWN_CODE: ReadonlySet<DeclineCode> = new Set([
  'expired_card',
  'incorrect_cvc',
  'incorrect_number',
  'invalid_expiry_month',
  'invalid_cvc',
  'processing_error',
]);

/** 402 card_error: the channel declined the payment. Not retryable with the same card as it is. */
export class CardDeclinedError extends ChannelError {
  readonly status = 402;
  readonly type = 'card_error';
  override readonly retryable = false;

  constructor(
    channel: string,
    readonly declineCode: DeclineCode,
    message: string,
    details: Omit<ErrorDetails, 'extra'> = {},
  ) {
    super(channel, OWN_CODE.has(declineCode) ? declineCode : 'card_declined', message, {
      ...details,
      param: details.param ?? paramOf(declineCode),
      extra: { decline_code: declineCode },
    });
  }

  /** The error for a failed authorization result, for the operation that must answer the merchant with it. */
  static of(channel: string, result: { declineCode?: DeclineCode; message?: string }): CardDeclinedError {
    const code = result.declineCode ?? 'card_declined';
    return new CardDeclinedError(channel, code, result.message ?? DECLINE_MESSAGES[code]);
  }
}

/** What the payer reads for each decline (the channel may send its own message instead). */
export const DECLINE_MESSAGES: Record<DeclineCode, string> = {
  card_declined: 'Your card was declined. Use another card or contact your bank.',
  insufficient_funds: 'Your card has insufficient funds. Use another card.',
  expired_card: 'Your card has expired. Check the expiry date or use another card.',
  incorrect_cvc: "Your card's security code is incorrect. Check the 3 or 4 digits on the card.",
  incorrect_number: 'Your card number is incorrect. Check the digits and try again.',
  invalid_expiry_month: "Your card's expiry month is invalid. Use a month from 1 to 12.",
  invalid_cvc: "Your card's security code is invalid. Enter the 3 or 4 digits on the card.",
  authentication_failed: 'The card could not be authenticated (3-D Secure). Try again or use another card.',
  processing_error: 'An error occurred while processing your card. Try again in a little while.',
  card_velocity_exceeded: 'This card was declined too many times in the last hour, so it is not accepted for now (a defence against card testing). Use another card, or try again in an hour.',
};

function paramOf(code: DeclineCode): string | undefined {
  switch (code) {
    case 'incorrect_number':
      return 'payment_method.card.number';
    case 'incorrect_cvc':
    case 'invalid_cvc':
      return 'payment_method.card.cvc';
    case 'invalid_expiry_month':
      return 'payment_method.card.exp_month';
    case 'expired_card':
      return 'payment_method.card.exp_year';
    default:
      return undefined;
  }
}

/**
 * 503: the channel did not answer (unreachable, 5xx, timeout). Retryable. With `outcomeUnknown`
 * the request may have been processed: query the channel before deciding anything.
 */
export class ChannelUnavailableError extends ChannelError {
  readonly status = 503;
  readonly type = 'api_error';
  override readonly retryable = true;
  override readonly outcomeUnknown: boolean;
  override readonly expose = false;

  constructor(channel: string, message: string, details: ErrorDetails & { outcomeUnknown?: boolean } = {}) {
    super(channel, 'channel_unavailable', message, details);
    this.outcomeUnknown = details.outcomeUnknown ?? true;
  }
}

/** A request that timed out after it was sent: the channel may have acted on it. */
export class ChannelTimeoutError extends ChannelUnavailableError {
  constructor(channel: string, message: string, details: ErrorDetails = {}) {
    super(channel, message, { ...details, outcomeUnknown: true });
  }
}

/**
 * 409: the channel refused the request and did nothing (e.g. `amount_too_large`, `already_captured`,
 * `id_reused`, `no_such_payment`). Retrying the same request gets the same answer.
 */
export class ChannelRejectedError extends ChannelError {
  readonly status = 409;
  readonly type = 'invalid_request_error';
  override readonly retryable = false;
}

/**
 * 502: a verified channel result (a notification or a query answer) for another amount or currency than the
 * attempt's. Nothing in it is applied: booking it would move money the payment does not carry.
 */
export class ChannelResultMismatchError extends ChannelError {
  readonly status = 502;
  readonly type = 'api_error';
  override readonly retryable = false;
  override readonly expose = false;
}

/** 400: a notification whose signature, timestamp or content does not verify. */
export class ChannelSignatureError extends ChannelError {
  readonly status = 400;
  readonly type = 'invalid_request_error';
  override readonly retryable = false;
}
