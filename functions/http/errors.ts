import type { APIGatewayProxyResult } from 'aws-lambda';
import { maskDigitRuns } from '../channels/card-numbers';
import { InternalError, PayplaneError, RateLimitError, RETRY_AFTER_SECONDS } from '../commons/errors';
import type { Lang } from '../commons/lang';
import { msg } from '../commons/messages';
import { logger } from '../commons/logger';

/**
 * The one place that turns errors into HTTP responses. Domain errors keep their status, code and
 * message in the caller's language (long digit runs masked); anything else is a 500 whose details stay in the log, never in the response.
 */
export function errorResponse(error: unknown, requestId: string, lang: Lang = 'en'): APIGatewayProxyResult {
  const known = error instanceof PayplaneError ? error : undefined;
  // Messages and params quote input (ids, keys, header values): a card number sent anywhere leaves masked.
  const param = known?.param === undefined ? undefined : maskDigitRuns(known.param);
  if (!known || known.status >= 500) {
    logger.error('request failed', { error: error as Error, requestId });
  } else {
    // Messages can quote merchant input, so only the code and parameter are logged.
    logger.info('request rejected', { status: known.status, code: known.code, param, requestId });
  }
  const err = known ?? new InternalError('internal_error', 'internal');
  const message = err.expose ? maskDigitRuns(err.messageIn(lang)) : msg.internal_error()[lang];
  return json(
    err.status,
    { error: { type: err.type, code: err.code, message, param, ...err.extra, request_id: requestId } },
    err instanceof RateLimitError ? { 'Retry-After': String(RETRY_AFTER_SECONDS) } : {},
  );
}

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify(body),
  };
}
