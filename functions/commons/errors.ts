import { msg } from './messages';
import type { Lang, Localized } from './lang';

/**
 * The one error hierarchy. Domain code throws these; `functions/http/errors.ts` is the only
 * place that turns them into HTTP responses. `expose` says whether `message` may reach a client:
 * a 5xx never leaks internals.
 */
export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'idempotency_error'
  | 'card_error'
  | 'permission_error'
  | 'rate_limit_error'
  | 'api_error';

export interface ErrorDetails {
  /** The request parameter at fault, dotted (`payer.email`). */
  param?: string;
  /** Extra machine-readable fields merged into the error body (e.g. `order_id`). */
  extra?: Record<string, string | number | boolean>;
  cause?: unknown;
}

export abstract class PayplaneError extends Error {
  abstract readonly status: number;
  abstract readonly type: ErrorType;
  readonly expose: boolean = true;
  /**
   * Whether the same request may succeed if sent again: a retryable error is never stored as an
   * Idempotency-Key's answer (functions/http/idempotency.ts), so the merchant's retry runs again.
   */
  readonly retryable: boolean = false;
  readonly param?: string;
  readonly extra?: Record<string, string | number | boolean>;
  /** The message in every language, from the catalog (functions/commons/messages.ts); `message` is its English. */
  readonly localized?: Localized;

  constructor(
    readonly code: string,
    message: string | Localized,
    details: ErrorDetails = {},
  ) {
    super(typeof message === 'string' ? message : message.en, { cause: details.cause });
    this.name = new.target.name;
    this.param = details.param;
    this.extra = details.extra;
    if (typeof message !== 'string') this.localized = message;
  }

  /** The message a client reads in `lang`: English where the catalog has no entry for this error yet. */
  messageIn(lang: Lang): string {
    return this.localized?.[lang] ?? this.message;
  }
}

/** 400: the request is wrong; the message names the field, the value and the fix. */
export class InvalidRequestError extends PayplaneError {
  readonly status = 400;
  readonly type = 'invalid_request_error';
}

/** 401: no usable credentials. */
export class AuthenticationError extends PayplaneError {
  readonly status = 401;
  readonly type = 'authentication_error';
}

/** 403: the key is valid but may not do this (a restricted key without the route's scope). */
export class PermissionError extends PayplaneError {
  readonly status = 403;
  readonly type = 'permission_error';
}

/** 429: too many requests; `Retry-After` says when to try again. */
export class RateLimitError extends PayplaneError {
  readonly status = 429;
  readonly type = 'rate_limit_error';
}

/**
 * Seconds a throttled caller waits before retrying. Fixed, and the same as API Gateway's THROTTLED gateway
 * response (lib/constructs/payplane-api.ts): a token bucket refills continuously, so one second always
 * buys at least `rate` new requests.
 */
export const RETRY_AFTER_SECONDS = 1;

/** 404: unknown resource, or one the caller may not see (the two are indistinguishable on purpose). */
export class NotFoundError extends PayplaneError {
  readonly status = 404;
  readonly type = 'invalid_request_error';
  constructor(resource: string, id: string, param = 'id') {
    super('resource_missing', msg.resource_missing({ resource, id }), { param });
  }
}

/** 409: the request conflicts with the current state of a resource. */
export class ConflictError extends PayplaneError {
  readonly status = 409;
  readonly type = 'invalid_request_error';
}

/** 409: lost a race with concurrent requests on the same resource; the same request may succeed when retried. */
export class ContendedError extends ConflictError {
  override readonly retryable = true;
}

/** 400: an Idempotency-Key reused with different parameters. */
export class IdempotencyMismatchError extends PayplaneError {
  readonly status = 400;
  readonly type = 'idempotency_error';
}

/** 409: the first request with this Idempotency-Key is still in flight. */
export class IdempotencyInProgressError extends PayplaneError {
  readonly status = 409;
  readonly type = 'idempotency_error';
  override readonly retryable = true;
}

/** 413: the body is over the API's limit. */
export class PayloadTooLargeError extends PayplaneError {
  readonly status = 413;
  readonly type = 'invalid_request_error';
}

/** 500: a bug or an unavailable dependency. Its message stays in the logs. */
export class InternalError extends PayplaneError {
  readonly status = 500;
  readonly type = 'api_error';
  override readonly expose = false;
}
