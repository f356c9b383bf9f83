import { CardDeclinedError, DECLINE_MESSAGES } from '../channels/errors';
import { msg } from '../commons/messages';
import { ConflictError } from '../commons/errors';
import type { Secret } from '../commons/secret';

/**
 * Defences against card testing (someone running stolen card numbers through a public checkout to find the live
 * ones). Both limits count in DynamoDB, in the transaction that claims the order, so concurrent attempts cannot
 * exceed them, and an attempt they refuse never reaches the channel.
 *
 * - Per order: an order declined ORDER_DECLINE_LIMIT times takes no more payments (`declined_attempts` on the
 *   order, added by the write that records a decline; the claim requires it to be below the limit). One attempt
 *   of an order is in flight at a time, so the count is exact.
 * - Per card: at most CARD_DECLINE_LIMIT declines of one card per clock hour, across all merchants, counted on
 *   the platform-wide fingerprint (fingerprint.ts). The claim takes a slot (conditional ADD on the hour's counter
 *   item, TTL'd); a result that is not a decline gives it back. An attempt whose result is still unknown holds its
 *   slot, so concurrent attempts cannot run past the limit. Fixed windows: a card can be declined up to twice the
 *   limit in the minutes around the turn of an hour.
 *
 * Declines are the payer's card refused (any decline code but processing_error, which is the channel's failure).
 */
export const ORDER_DECLINE_LIMIT = 5;
export const CARD_DECLINE_LIMIT = 10;
export const CARD_WINDOW_MS = 3600_000;

/** The counter item of a card's declines in the clock hour of `now` (pk; sk VELOCITY), and when it may be deleted. */
export function cardCounter(platformFingerprint: Secret<string>, now: Date): { pk: string; ttl: number } {
  const start = Math.floor(now.getTime() / CARD_WINDOW_MS) * CARD_WINDOW_MS;
  return { pk: `CARDVELOCITY#${platformFingerprint.reveal()}#${new Date(start).toISOString()}`, ttl: Math.floor((start + 2 * CARD_WINDOW_MS) / 1000) };
}

export const ORDER_ATTEMPTS_EXHAUSTED = 'order_attempts_exhausted';

export function orderAttemptsExhausted(orderId: string): ConflictError {
  return new ConflictError(
    ORDER_ATTEMPTS_EXHAUSTED,
    msg.order_attempts_exhausted({ id: orderId, limit: ORDER_DECLINE_LIMIT }),
    { param: 'id', extra: { declined_attempts: ORDER_DECLINE_LIMIT } },
  );
}

export function cardVelocityExceeded(): CardDeclinedError {
  return new CardDeclinedError('payplane', 'card_velocity_exceeded', DECLINE_MESSAGES.card_velocity_exceeded);
}
