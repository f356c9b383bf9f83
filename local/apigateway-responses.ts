/**
 * API Gateway gateway responses: the errors API Gateway itself returns (no route, unauthorized,
 * denied, body too large, integration failures), customizable with AWS::ApiGateway::GatewayResponse.
 *
 * Resolution order, as in API Gateway: the response of that type if the template defines one; else
 * DEFAULT_4XX / DEFAULT_5XX of the template (keeping the type's own status code unless that one sets
 * a StatusCode); else API Gateway's built-in default `{"message":$context.error.messageString}`.
 */

export type GatewayResponseType =
  | 'ACCESS_DENIED'
  | 'API_CONFIGURATION_ERROR'
  | 'AUTHORIZER_CONFIGURATION_ERROR'
  | 'AUTHORIZER_FAILURE'
  | 'BAD_REQUEST_PARAMETERS'
  | 'BAD_REQUEST_BODY'
  | 'DEFAULT_4XX'
  | 'DEFAULT_5XX'
  | 'EXPIRED_TOKEN'
  | 'INTEGRATION_FAILURE'
  | 'INTEGRATION_TIMEOUT'
  | 'INVALID_API_KEY'
  | 'INVALID_SIGNATURE'
  | 'MISSING_AUTHENTICATION_TOKEN'
  | 'QUOTA_EXCEEDED'
  | 'REQUEST_TOO_LARGE'
  | 'RESOURCE_NOT_FOUND'
  | 'THROTTLED'
  | 'UNAUTHORIZED'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'WAF_FILTERED';

/** Default status code and x-amzn-ErrorType of each type (DEFAULT_* have no status of their own). */
const TYPES: Record<GatewayResponseType, { status?: number; errorType: string }> = {
  ACCESS_DENIED: { status: 403, errorType: 'AccessDeniedException' },
  API_CONFIGURATION_ERROR: { status: 500, errorType: 'ApiConfigurationException' },
  AUTHORIZER_CONFIGURATION_ERROR: { status: 500, errorType: 'AuthorizerConfigurationException' },
  AUTHORIZER_FAILURE: { status: 500, errorType: 'AuthorizerFailureException' },
  BAD_REQUEST_PARAMETERS: { status: 400, errorType: 'BadRequestException' },
  BAD_REQUEST_BODY: { status: 400, errorType: 'BadRequestException' },
  DEFAULT_4XX: { errorType: 'BadRequestException' },
  DEFAULT_5XX: { errorType: 'InternalServerErrorException' },
  EXPIRED_TOKEN: { status: 403, errorType: 'ExpiredTokenException' },
  INTEGRATION_FAILURE: { status: 504, errorType: 'InternalServerErrorException' },
  INTEGRATION_TIMEOUT: { status: 504, errorType: 'InternalServerErrorException' },
  INVALID_API_KEY: { status: 403, errorType: 'ForbiddenException' },
  INVALID_SIGNATURE: { status: 403, errorType: 'InvalidSignatureException' },
  MISSING_AUTHENTICATION_TOKEN: { status: 403, errorType: 'MissingAuthenticationTokenException' },
  QUOTA_EXCEEDED: { status: 429, errorType: 'LimitExceededException' },
  REQUEST_TOO_LARGE: { status: 413, errorType: 'RequestTooLargeException' },
  RESOURCE_NOT_FOUND: { status: 404, errorType: 'ResourceNotFoundException' },
  THROTTLED: { status: 429, errorType: 'TooManyRequestsException' },
  UNAUTHORIZED: { status: 401, errorType: 'UnauthorizedException' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, errorType: 'BadRequestException' },
  WAF_FILTERED: { status: 403, errorType: 'WafFilteredException' },
};

export const DEFAULT_TEMPLATE = '{"message":$context.error.messageString}';

/** One AWS::ApiGateway::GatewayResponse of the template, resolved. */
export interface GatewayResponseDefinition {
  type: GatewayResponseType;
  statusCode?: number;
  /** `gatewayresponse.header.<Name>` → `'literal'` | `context.<var>` | `method.request.<where>.<name>` … */
  parameters: Record<string, string>;
  /** Content type → VTL-ish template. */
  templates: Record<string, string>;
}

/** An error raised while handling a request, to be answered with a gateway response. */
export class GatewayError extends Error {
  constructor(
    readonly type: GatewayResponseType,
    /** `$context.error.message`; null renders as JSON null (e.g. authorizer configuration errors). */
    readonly gatewayMessage: string | null,
    /** Overrides the type's status (e.g. 502 for a failed Lambda proxy integration, a DEFAULT_5XX). */
    readonly statusOverride?: number,
    /** Overrides the x-amzn-ErrorType header. */
    readonly errorTypeOverride?: string,
  ) {
    super(gatewayMessage ?? type);
    this.name = 'GatewayError';
  }
}

/** The built-in errors of API Gateway, with its messages. */
export const gatewayErrors = {
  missingAuthenticationToken: () => new GatewayError('MISSING_AUTHENTICATION_TOKEN', 'Missing Authentication Token'),
  unauthorized: () => new GatewayError('UNAUTHORIZED', 'Unauthorized'),
  explicitDeny: () => new GatewayError('ACCESS_DENIED', 'User is not authorized to access this resource with an explicit deny'),
  notAllowed: () => new GatewayError('ACCESS_DENIED', 'User is not authorized to access this resource'),
  authorizerConfiguration: () => new GatewayError('AUTHORIZER_CONFIGURATION_ERROR', null),
  requestTooLarge: () => new GatewayError('REQUEST_TOO_LARGE', 'Request Too Long'),
  integrationTimeout: () => new GatewayError('INTEGRATION_TIMEOUT', 'Endpoint request timed out'),
  /** A Lambda proxy integration that failed or returned a malformed response. */
  lambdaFailure: () => new GatewayError('DEFAULT_5XX', 'Internal server error', 502, 'InternalServerErrorException'),
  integrationFailure: () => new GatewayError('INTEGRATION_FAILURE', 'Internal server error', 502),
  apiConfiguration: () => new GatewayError('API_CONFIGURATION_ERROR', 'Internal server error'),
  throttled: () => new GatewayError('THROTTLED', 'Too Many Requests'),
  invalidApiKey: () => new GatewayError('INVALID_API_KEY', 'Forbidden'),
};

export interface RenderContext {
  /** `$context.*` variables (requestId, stage, path, httpMethod, resourcePath, …); nested via dots. */
  context: Record<string, unknown>;
  /** Request headers, query string and path parameters for `method.request.*` parameters. */
  request?: { headers?: Record<string, string>; querystring?: Record<string, string>; path?: Record<string, string> };
  stageVariables?: Record<string, string>;
}

export interface RenderedResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** Picks the template's response for `error.type` (or its fallback) and renders it. */
export function renderGatewayResponse(
  definitions: ReadonlyMap<GatewayResponseType, GatewayResponseDefinition>,
  error: GatewayError,
  render: RenderContext,
): RenderedResponse {
  const info = TYPES[error.type];
  const own = definitions.get(error.type);
  const defaultStatus = error.statusOverride ?? info.status ?? (error.type === 'DEFAULT_4XX' ? 400 : 500);
  const fallbackType = defaultStatus >= 500 ? 'DEFAULT_5XX' : 'DEFAULT_4XX';
  const fallback = definitions.get(fallbackType);
  const chosen = own ?? fallback;
  const statusCode = error.statusOverride ?? (own ? own.statusCode : fallback?.statusCode) ?? defaultStatus;
  const template = pickTemplate(chosen?.templates) ?? DEFAULT_TEMPLATE;
  const context = {
    ...render.context,
    error: {
      message: error.gatewayMessage,
      messageString: JSON.stringify(error.gatewayMessage),
      responseType: error.type,
      validationErrorString: '',
    },
  };
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'x-amzn-ErrorType': error.errorTypeOverride ?? info.errorType,
  };
  for (const [key, expression] of Object.entries(chosen?.parameters ?? {})) {
    const match = /^gatewayresponse\.header\.(.+)$/.exec(key);
    if (!match) continue;
    const value = parameterValue(expression, context, render);
    if (value !== undefined) headers[match[1]!] = value;
  }
  return { statusCode, headers, body: renderTemplate(template, context) };
}

function pickTemplate(templates: Record<string, string> | undefined): string | undefined {
  if (!templates) return undefined;
  return templates['application/json'] ?? Object.values(templates)[0];
}

/** `'literal'`, `context.x.y`, `method.request.header|querystring|path.name`, `stageVariables.name`. */
function parameterValue(expression: string, context: Record<string, unknown>, render: RenderContext): string | undefined {
  const literal = /^'(.*)'$/s.exec(expression);
  if (literal) return literal[1];
  if (expression.startsWith('context.')) {
    const value = lookup(context, expression.slice('context.'.length));
    return value === undefined || value === null ? undefined : String(value);
  }
  const request = /^method\.request\.(header|querystring|path)\.(.+)$/.exec(expression);
  if (request) {
    const [, where, name] = request;
    const source = where === 'header' ? render.request?.headers : where === 'querystring' ? render.request?.querystring : render.request?.path;
    if (!source) return undefined;
    if (where === 'header') {
      const key = Object.keys(source).find((k) => k.toLowerCase() === name!.toLowerCase());
      return key === undefined ? undefined : source[key];
    }
    return source[name!];
  }
  if (expression.startsWith('stageVariables.')) return render.stageVariables?.[expression.slice('stageVariables.'.length)];
  return undefined;
}

function lookup(root: Record<string, unknown>, path: string): unknown {
  let value: unknown = root;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/**
 * The subset of VTL that gateway response templates use: `$context.a.b` and `${context.a.b}`
 * (plus `$stageVariables.x`). Unknown variables render as an empty string, as in API Gateway.
 */
export function renderTemplate(template: string, context: Record<string, unknown>, stageVariables: Record<string, string> = {}): string {
  const value = (root: string, path: string) => {
    const v = root === 'context' ? lookup(context, path) : stageVariables[path];
    return v === undefined || v === null ? '' : String(v);
  };
  return template
    .replace(/\$\{(context|stageVariables)\.([A-Za-z0-9_.]+)\}/g, (_m, root: string, path: string) => value(root, path))
    .replace(/\$(context|stageVariables)\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)/g, (_m, root: string, path: string) =>
      value(root, path),
    );
}

export function isGatewayResponseType(value: string): value is GatewayResponseType {
  return value in TYPES;
}
