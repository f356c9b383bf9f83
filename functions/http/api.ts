import httpHeaderNormalizer from '@middy/http-header-normalizer';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { AuthenticationError, InvalidRequestError, PayloadTooLargeError } from '../commons/errors';
import { publicBaseUrl } from '../commons/config';
import { idFromSeed, newId } from '../commons/ids';
import { negotiateLang } from '../commons/lang';
import { msg } from '../commons/messages';
import { lambda } from '../commons/lambda';
import type { AuditContext } from '../audit/context';
import { ALL_SCOPES, requireScope } from '../merchants/scopes';
import { errorResponse, json } from './errors';
import type { Claim } from './idempotency';

/** Bodies above this are refused before parsing; orders are small and the limit bounds the work per request. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Our deepest body is 3 levels (payment_method.card.number); the limit keeps every later walk over it shallow. */
export const MAX_BODY_DEPTH = 32;

export interface ApiRequest {
  merchantId: string;
  requestId: string;
  /** Who the audit trail says made a change: the API key the authorizer resolved, and API Gateway's request id. */
  by: AuditContext;
  /** The request's Idempotency-Key header, if it sent one: events caused by the request carry it. */
  idempotencyKey: string | null;
  body: Record<string, unknown>;
  query: Record<string, string>;
  params: Record<string, string>;
  /** The stage's public base URL (configuration, not the request), e.g. `https://api.example.com/prod`. */
  baseUrl: string;
  now: Date;
  /**
   * The id of the `prefix` object this request creates. With an Idempotency-Key it is fixed by the key's
   * claim before the operation runs, so a retry that takes over a dead run finishes the same object.
   */
  newId(prefix: string): string;
  /** True when this run took over the Idempotency-Key of a run that died: what it creates may exist already. */
  resumed: boolean;
}

export interface ApiResult {
  status: number;
  body: unknown;
}

/** A response that is not JSON (the CSV reports and bills), with its own headers (Content-Digest). */
export interface ApiTextResult {
  status: number;
  text: string;
  contentType: string;
  headers?: Record<string, string>;
}

/**
 * The wrapper every read API route shares: auth context, body limits and parsing, JSON responses, the
 * Request-Id header and the one error mapping. A route supplies only its domain operation. A POST route
 * uses `idempotentApi` (./idempotent-api.ts), which adds the Idempotency-Key; it lives apart so that read
 * routes do not bundle the Encryption SDK that sealing stored responses needs.
 */
export function api(operation: (request: ApiRequest) => Promise<ApiResult | ApiTextResult>) {
  return route(operation, (event, _context, _request, run) => {
    // Fail closed: a POST built with api() would silently ignore the merchant's Idempotency-Key.
    if (event.httpMethod === 'POST' && event.headers['idempotency-key'] !== undefined) {
      throw new Error(`${event.httpMethod} ${event.resource} is built with api(), which has no idempotency: build it with idempotentApi().`);
    }
    return run();
  });
}

/** How a route runs its operation: `run()` at once, or `run(claim)` under an Idempotency-Key's claim. */
export type Runner = (
  event: APIGatewayProxyEvent,
  context: Context,
  request: ApiRequest,
  run: (claim?: Claim) => Promise<APIGatewayProxyResult>,
) => Promise<APIGatewayProxyResult>;

/** The shared body of `api` and `idempotentApi`; only how the operation is run differs. */
export function route(operation: (request: ApiRequest) => Promise<ApiResult | ApiTextResult>, runner: Runner) {
  return lambda<APIGatewayProxyEvent, APIGatewayProxyResult>()
    .use(httpHeaderNormalizer())
    .use({
      after: (request) => {
        request.response = withRequestId(request.response, request.event);
      },
      onError: (request) => {
        request.response = withRequestId(errorResponse(request.error, request.event.requestContext.requestId, langOf(request.event)), request.event);
      },
    })
    .handler(async (event, context) => {
      const request = toApiRequest(event);
      const run = async (claim?: Claim) => {
        const fixed = claim && { newId: (prefix: string) => idFromSeed(prefix, claim.seed), resumed: claim.resumed };
        const result = await operation({ ...request, ...fixed });
        if ('text' in result) return { statusCode: result.status, headers: { ...result.headers, 'Content-Type': result.contentType }, body: result.text };
        return json(result.status, result.body);
      };
      return runner(event, context, request, run);
    });
}

/** A request on an operator route (AWS_IAM): who is calling, as AWS established it, and the JSON body. */
export interface OperatorRequest {
  /** The operator, for the audit trail: the IAM principal API Gateway authenticated, and the request id. */
  by: AuditContext;
  body: Record<string, unknown>;
  params: Record<string, string>;
  /** `METHOD /resource/{id}` as the template names the route (functions/operator/routes.ts routeKey). */
  route: string;
  now: Date;
}

/**
 * The wrapper of the operator routes (`/operator/…`, AuthorizationType AWS_IAM): API Gateway has checked the
 * SigV4 signature and `execute-api:Invoke`, and names the principal in requestContext.identity.userArn. There is no
 * API key, no merchant and no Idempotency-Key: an operator's retry is a new command, as the CLI's always was.
 */
export function operatorApi(operation: (request: OperatorRequest) => Promise<ApiResult>) {
  return lambda<APIGatewayProxyEvent, APIGatewayProxyResult>()
    .use(httpHeaderNormalizer())
    .use({
      after: (request) => {
        request.response = withRequestId(request.response, request.event);
      },
      onError: (request) => {
        request.response = withRequestId(errorResponse(request.error, request.event.requestContext.requestId, langOf(request.event)), request.event);
      },
    })
    .handler(async (event) => {
      const principal = event.requestContext.identity?.userArn;
      // Only an AWS_IAM method fills userArn; a route deployed without it must fail closed, never act as nobody.
      if (!principal) throw new AuthenticationError('iam_identity_missing', 'This operator route needs a SigV4-signed request (AWS_IAM): no IAM principal reached it.');
      const result = await operation({
        by: { actor: { type: 'operator', principal }, requestId: event.requestContext.requestId },
        body: parseBody(event),
        params: (event.pathParameters ?? {}) as Record<string, string>,
        route: `${event.httpMethod} ${event.resource}`,
        now: new Date(),
      });
      return json(result.status, result.body);
    });
}

function toApiRequest(event: APIGatewayProxyEvent): ApiRequest {
  const merchantId = event.requestContext.authorizer?.merchantId as string | undefined;
  const keyId = event.requestContext.authorizer?.keyId as string | undefined;
  // The authorizer guarantees both; a route deployed without it must fail closed (no change without its actor).
  if (!merchantId || !keyId) throw new AuthenticationError('api_key_missing', msg.api_key_missing());
  // Before the body is read: a key without the route's scope learns nothing from validation errors. Absent
  // only in a decision cached by an authorizer older than restricted keys, which knew secret keys alone.
  requireScope(String(event.requestContext.authorizer?.scopes ?? ALL_SCOPES), event.httpMethod, event.resource);
  return {
    merchantId,
    requestId: event.requestContext.requestId,
    by: { actor: { type: 'merchant_key', key_id: keyId }, requestId: event.requestContext.requestId },
    idempotencyKey: event.headers['idempotency-key'] ?? null,
    body: parseBody(event),
    query: queryOf(event),
    params: (event.pathParameters ?? {}) as Record<string, string>,
    baseUrl: publicBaseUrl(),
    now: new Date(),
    newId,
    resumed: false,
  };
}

function parseBody(event: APIGatewayProxyEvent): Record<string, unknown> {
  if (event.body == null || event.body === '') return {};
  const raw = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  const size = Buffer.byteLength(raw, 'utf8');
  if (size > MAX_BODY_BYTES) {
    throw new PayloadTooLargeError('body_too_large', msg.body_too_large({ size, limit: MAX_BODY_BYTES }));
  }
  if (nestedDeeperThan(raw, MAX_BODY_DEPTH)) {
    throw new InvalidRequestError('body_too_deep', msg.body_too_deep({ limit: MAX_BODY_DEPTH }));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new InvalidRequestError('body_not_json', msg.body_not_json({ reason: (error as Error).message }), { cause: error });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InvalidRequestError('body_not_object', msg.body_not_object({ got: Array.isArray(parsed) ? 'array' : parsed === null ? 'null' : typeof parsed }));
  }
  return parsed as Record<string, unknown>;
}

/**
 * Whether `[` and `{` nest deeper than `limit` in JSON text, found in one pass without parsing (so
 * without recursion). Brackets inside strings do not count; malformed text is left to JSON.parse.
 */
export function nestedDeeperThan(raw: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (inString) {
      if (c === '\\') i++; // skip the escaped character
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') {
      if (++depth > limit) return true;
    } else if (c === '}' || c === ']') depth--;
  }
  return false;
}

function queryOf(event: APIGatewayProxyEvent): Record<string, string> {
  const multi = event.multiValueQueryStringParameters ?? {};
  for (const [name, values] of Object.entries(multi)) {
    if (values && values.length > 1) {
      throw new InvalidRequestError('parameter_repeated', msg.parameter_repeated({ name, count: values.length }), { param: name });
    }
  }
  return (event.queryStringParameters ?? {}) as Record<string, string>;
}

/** The language of the caller's error messages: Accept-Language (the header normalizer lowercased its name). */
export const langOf = (event: APIGatewayProxyEvent) => negotiateLang(event.headers?.['accept-language']);

function withRequestId(response: APIGatewayProxyResult, event: APIGatewayProxyEvent): APIGatewayProxyResult {
  return { ...response, headers: { ...response.headers, 'Request-Id': event.requestContext.requestId } };
}
