import type { Secret } from '../commons/secret';
import type { DeclineCode } from './errors';

/**
 * The one interface every payment channel implements, in platform terms only. A channel's wire
 * format (field names, amount encoding, status words, signatures, acknowledgements) stays inside
 * the channel's own folder, in its `transformers.ts` (the Hyperswitch connector layout).
 *
 * Amounts are integers in the currency's minor unit (commons/money.ts) everywhere here.
 *
 * Idempotency: every call is safe to repeat. `authorize` is keyed by `paymentId`, `refund` by
 * `refundId`; repeating one returns the first answer without acting twice. Repeating with other
 * parameters is refused (`ChannelRejectedError`, code `id_reused`).
 *
 * Errors (./errors.ts): declines are *returned* (`status: 'failed'`). A `ChannelUnavailableError`
 * with `outcomeUnknown` means "no answer, maybe acted": call `query(paymentId)` before deciding.
 */
export interface PaymentChannel {
  /** The registry id (`channel('sandbox')`), also stored on the platform's payment attempt. */
  readonly id: ChannelId;

  /**
   * Card numbers the channel publishes for every merchant to test with. They are exempt from the per-card decline
   * limit (payments/velocity.ts): every merchant's test suite declines them on purpose, so counting them across
   * merchants would let one merchant's tests block everyone's. The per-order limit still applies to them.
   */
  readonly publishedTestCards?: ReadonlySet<string>;

  /** Starts a payment attempt: authorizes, and captures at once when `capture` is true. */
  authorize(request: AuthorizeRequest): Promise<AuthorizeResult>;

  /** Finishes a `requires_action` attempt once the payer passed or failed the 3-D Secure challenge. */
  completeAction(paymentId: string, challengeId: string, outcome: ChallengeOutcome): Promise<AuthorizeResult>;

  /** Captures `amount` (≤ authorized) of a `requires_capture` attempt; the rest is released. */
  capture(channelRef: string, amount: number): Promise<CaptureResult>;

  /** Releases a `requires_capture` authorization (or abandons a `requires_action` one). */
  void(channelRef: string): Promise<VoidResult>;

  /** Refunds `amount` of the captured amount; `refundId` is the platform's idempotency handle for it. */
  refund(channelRef: string, refundId: string, amount: number): Promise<RefundResult>;

  /** The channel's own record of an attempt, for when the platform never heard back; undefined if it has none. */
  query(paymentId: string): Promise<ChannelPayment | undefined>;

  /**
   * Verifies an asynchronous notification (signature, freshness, content) and returns it in platform
   * terms. Throws `ChannelSignatureError` when anything does not verify. Notifications may arrive more
   * than once and out of order: apply by `eventId` (dedupe) and `sequence` (ignore older than applied).
   */
  parseNotification(headers: Record<string, string | undefined>, rawBody: string | Uint8Array): Promise<ChannelEvent>;

  /** The HTTP answer the channel expects for a notification: `ok` = applied (or already applied). */
  notificationAck(ok: boolean): NotificationAck;
}

export type ChannelId = 'sandbox';

export interface CardDetails {
  /** The PAN, digits only (spaces and dashes are tolerated and removed). */
  number: string;
  exp_month: number;
  /** Four digits; two-digit years mean 20xx. */
  exp_year: number;
  cvc: string;
}

export type PaymentMethod = { type: 'card'; card: Secret<CardDetails> } | { type: 'wallet' };

export interface AuthorizeRequest {
  /** The platform's idempotency handle for this attempt: one authorization per paymentId, ever. */
  paymentId: string;
  amount: number;
  currency: string;
  /** true: authorize and capture at once (→ `succeeded`); false: authorize only (→ `requires_capture`). */
  capture: boolean;
  method: PaymentMethod;
  /** Where the channel POSTs asynchronous results for this attempt. */
  notifyUrl: string;
  /** Where the payer returns after an off-page step, when the channel has one. */
  returnUrl?: string;
}

export type AuthorizeStatus = 'succeeded' | 'requires_capture' | 'requires_action' | 'processing' | 'failed';

export interface AuthorizeResult {
  status: AuthorizeStatus;
  /** The channel's id for the attempt; capture, void and refund take it. */
  channelRef: string;
  /** Set when `status` is `failed`. */
  declineCode?: DeclineCode;
  /** A message for the payer when `failed` (never contains card data). */
  message?: string;
  /** Set when `status` is `requires_action`. */
  action?: ThreeDSecureAction;
}

export interface ThreeDSecureAction {
  type: 'three_d_secure';
  challengeId: string;
}

export type ChallengeOutcome = 'approve' | 'fail';

export interface CaptureResult {
  status: 'succeeded';
  amountCaptured: number;
  /** The part of the authorization given back to the payer. */
  amountReleased: number;
}

export interface VoidResult {
  status: 'canceled';
  amountReleased: number;
}

export interface RefundResult {
  status: 'succeeded' | 'processing' | 'failed';
  /** The channel's id for the refund. */
  refundRef: string;
  amount: number;
  declineCode?: DeclineCode;
  message?: string;
}

/** The channel's truth about an attempt. */
export interface ChannelPayment {
  paymentId: string;
  channelRef: string;
  status: AuthorizeStatus | 'canceled';
  amount: number;
  currency: string;
  amountAuthorized: number;
  amountCaptured: number;
  amountRefunded: number;
  declineCode?: DeclineCode;
  message?: string;
  action?: ThreeDSecureAction;
  refunds: { refundId: string; refundRef: string; amount: number; status: RefundResult['status'] }[];
  /** Increases with every change of the attempt; the same counter notifications carry. */
  sequence: number;
  updatedAt: string;
}

/** An asynchronous result, verified and in platform terms. */
export interface ChannelEvent {
  /** Unique per event; a redelivery of the same event carries the same id. Dedupe on it. */
  eventId: string;
  paymentId: string;
  channelRef: string;
  /** The attempt's status after the event: never `requires_action` or `processing` (those are not results). */
  status: Exclude<AuthorizeStatus, 'requires_action' | 'processing'> | 'canceled';
  declineCode?: DeclineCode;
  message?: string;
  amount: number;
  currency: string;
  /** Monotonic per attempt: an event with a lower sequence than one already applied is stale. */
  sequence: number;
  /** When the change happened at the channel (ISO 8601, UTC). */
  occurredAt: string;
}

export interface NotificationAck {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}
