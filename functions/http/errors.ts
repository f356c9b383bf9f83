import type { APIGatewayProxyResult } from 'aws-lambda';
import { maskDigitRuns } from '../channels/card-numbers';
import { InternalError, PayplaneError } from '../commons/errors';
import { logger } from '../commons/logger';

/**
 * The one place that turns errors into HTTP responses. Domain errors keep their status, code and
 * message (long digit runs masked); anything else is a 500 whose details stay in the log, never in the response.
 */
export function errorResponse(error: unknown, requestId: string): APIGatewayProxyResult {
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
  const message = err.expose
    ? maskDigitRuns(err.message)
    : 'An unexpected error occurred on our side. Retry with the same Idempotency-Key; if it persists, contact support with the request id.';
  return json(err.status, {
    error: { type: err.type, code: err.code, message, param, ...err.extra, request_id: requestId },
  });
}

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify(body),
  };
}
