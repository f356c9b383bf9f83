/**
 * One class per error `type` the API answers with (`{"error": {type, code, message, param, request_id}}`), so a
 * caller can `catch (e) { if (e instanceof CardError) … }`. Every error carries the `Request-Id` to quote to support.
 */
export interface RawError {
  type?: string;
  code?: string;
  message?: string;
  param?: string;
  request_id?: string;
  [extra: string]: unknown;
}

export class PayplaneError extends Error {
  override readonly name: string = 'PayplaneError';
  /** The API's `error.type`, e.g. `card_error`; `connection_error` when no answer came. */
  readonly type: string;
  /** The API's `error.code`, e.g. `card_declined`. */
  readonly code: string | undefined;
  /** The request field at fault, e.g. `payment_method.card.number`. */
  readonly param: string | undefined;
  /** HTTP status, undefined when the request never got an answer. */
  readonly statusCode: number | undefined;
  /** The `Request-Id` response header (the error body's `request_id` when the header is missing). */
  readonly requestId: string | undefined;
  /** The `Idempotency-Key` the call sent (generated or the caller's): retry with it to stay safe. */
  readonly idempotencyKey: string | undefined;
  /** The error object as the API sent it. */
  readonly raw: RawError;
  readonly headers: Record<string, string>;

  constructor(init: {
    message: string;
    type: string;
    raw?: RawError;
    statusCode?: number;
    requestId?: string;
    idempotencyKey?: string;
    headers?: Record<string, string>;
    cause?: unknown;
  }) {
    super(init.message, { cause: init.cause });
    this.type = init.type;
    this.raw = init.raw ?? {};
    this.code = init.raw?.code;
    this.param = init.raw?.param;
    this.statusCode = init.statusCode;
    this.requestId = init.requestId ?? init.raw?.request_id;
    this.idempotencyKey = init.idempotencyKey;
    this.headers = init.headers ?? {};
  }
}

/** 402: the card was declined (`code`: card_declined, insufficient_funds, expired_card, …). */
export class CardError extends PayplaneError {
  override readonly name = 'CardError';
  /** The decline reason when the channel gave one. */
  get declineCode(): string | undefined {
    return typeof this.raw.decline_code === 'string' ? this.raw.decline_code : undefined;
  }
}
/** 400/404/409: the request is wrong for the API or for the object's state; `param` names the field. */
export class InvalidRequestError extends PayplaneError {
  override readonly name = 'InvalidRequestError';
}
/** 401: no key, a malformed key, or a revoked one. */
export class AuthenticationError extends PayplaneError {
  override readonly name = 'AuthenticationError';
}
/** 403: a restricted key without the route's scope (`param` names the scope). */
export class PermissionError extends PayplaneError {
  override readonly name = 'PermissionError';
}
/** 429: too many requests; retried automatically, honouring `Retry-After`. */
export class RateLimitError extends PayplaneError {
  override readonly name = 'RateLimitError';
}
/** An Idempotency-Key reused with another request (400), or still in use by a concurrent one (409). */
export class IdempotencyError extends PayplaneError {
  override readonly name = 'IdempotencyError';
}
/** 5xx, or an answer that is not the API's error shape. */
export class ApiError extends PayplaneError {
  override readonly name = 'ApiError';
}
/** No answer: the connection failed or the call's timeout passed (after the retries). */
export class ConnectionError extends PayplaneError {
  override readonly name = 'ConnectionError';
}

const BY_TYPE: Record<string, new (init: ConstructorParameters<typeof PayplaneError>[0]) => PayplaneError> = {
  card_error: CardError,
  invalid_request_error: InvalidRequestError,
  authentication_error: AuthenticationError,
  permission_error: PermissionError,
  rate_limit_error: RateLimitError,
  idempotency_error: IdempotencyError,
  api_error: ApiError,
};

/** The typed error for an answer that was not 2xx. */
export function errorFromResponse(status: number, body: unknown, headers: Record<string, string>, idempotencyKey?: string): PayplaneError {
  const raw = (body as { error?: RawError } | undefined)?.error;
  const known = raw && typeof raw === 'object' && typeof raw.type === 'string' ? raw : undefined;
  const type = known?.type ?? (status === 429 ? 'rate_limit_error' : 'api_error');
  const Class = BY_TYPE[type] ?? ApiError;
  return new Class({
    message: known?.message ?? `HTTP ${status} without an error object${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`,
    type,
    raw: known ?? {},
    statusCode: status,
    requestId: headers['request-id'],
    idempotencyKey,
    headers,
  });
}
