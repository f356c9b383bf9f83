import { gatewayErrors, GatewayError } from './apigateway-responses';
import type { ApiAuthorizer } from './apigateway-routes';

/**
 * Lambda authorizers as API Gateway runs them: identity sources, the result cache (keyed by the
 * identity source values, for AuthorizerResultTtlInSeconds), and IAM-style evaluation of the returned
 * policy against each request's method ARN. The cached policy is evaluated again for every request,
 * which is why an authorizer whose policy names only the first route denies the next one.
 */

export interface AuthorizerOutput {
  principalId: string;
  policyDocument: PolicyDocument;
  context?: Record<string, string | number | boolean>;
  usageIdentifierKey?: string;
}

export interface PolicyStatement {
  Effect: string;
  Action?: string | string[];
  Resource?: string | string[];
  NotAction?: string | string[];
  NotResource?: string | string[];
}

export interface PolicyDocument {
  Version?: string;
  Statement: PolicyStatement | PolicyStatement[];
}

export type PolicyDecision = 'Allow' | 'Deny' | 'NoMatch';

/**
 * IAM evaluation of one policy for `execute-api:Invoke` on `methodArn`: an explicit Deny wins, then an
 * Allow, otherwise implicit deny. `*` matches any run of characters (slashes included), `?` one.
 */
export function evaluatePolicy(policy: PolicyDocument, methodArn: string, action = 'execute-api:Invoke'): PolicyDecision {
  const statements = Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement];
  let allowed = false;
  for (const s of statements) {
    if (!s || typeof s !== 'object') continue;
    const actionMatches =
      s.Action !== undefined ? list(s.Action).some((a) => wildcard(a, action, true)) : s.NotAction !== undefined ? !list(s.NotAction).some((a) => wildcard(a, action, true)) : false;
    const resourceMatches =
      s.Resource !== undefined
        ? list(s.Resource).some((r) => wildcard(r, methodArn, false))
        : s.NotResource !== undefined
          ? !list(s.NotResource).some((r) => wildcard(r, methodArn, false))
          : false;
    if (!actionMatches || !resourceMatches) continue;
    if (s.Effect === 'Deny') return 'Deny';
    if (s.Effect === 'Allow') allowed = true;
  }
  return allowed ? 'Allow' : 'NoMatch';
}

function list(value: string | string[]): string[] {
  return Array.isArray(value) ? value : [value];
}

/** IAM wildcard match; actions compare case-insensitively, resources case-sensitively. */
export function wildcard(pattern: string, value: string, ignoreCase: boolean): boolean {
  const regex = new RegExp(
    `^${pattern
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
    ignoreCase ? 'is' : 's',
  );
  return regex.test(value);
}

/** Checks the shape API Gateway requires of an authorizer's answer; anything else is a 500. */
export function validateAuthorizerOutput(value: unknown): AuthorizerOutput {
  const v = value as Partial<AuthorizerOutput> | null;
  if (!v || typeof v !== 'object') throw gatewayErrors.authorizerConfiguration();
  const doc = v.policyDocument as PolicyDocument | undefined;
  if (v.principalId === undefined || v.principalId === null || !doc || typeof doc !== 'object' || !doc.Statement) {
    throw gatewayErrors.authorizerConfiguration();
  }
  if (v.context !== undefined && v.context !== null) {
    if (typeof v.context !== 'object' || Array.isArray(v.context)) throw gatewayErrors.authorizerConfiguration();
    // Context values must be strings, numbers or booleans: objects and arrays are refused.
    for (const item of Object.values(v.context)) {
      if (item !== null && typeof item === 'object') throw gatewayErrors.authorizerConfiguration();
    }
  }
  return { principalId: String(v.principalId), policyDocument: doc, context: v.context ?? undefined, usageIdentifierKey: v.usageIdentifierKey };
}

interface CacheEntry {
  output: AuthorizerOutput;
  expiresAt: number;
}

/** Per-authorizer cache of authorizer results, keyed by identity source values. */
export class AuthorizerCache {
  private readonly entries = new Map<string, CacheEntry>();
  hits = 0;
  misses = 0;

  constructor(private readonly now: () => number = Date.now) {}

  get(key: string): AuthorizerOutput | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > this.now()) {
      this.hits++;
      return entry.output;
    }
    if (entry) this.entries.delete(key);
    this.misses++;
    return undefined;
  }

  set(key: string, output: AuthorizerOutput, ttlSeconds: number): void {
    if (ttlSeconds > 0) this.entries.set(key, { output, expiresAt: this.now() + ttlSeconds * 1000 });
  }

  /** FlushStageAuthorizersCache. */
  flush(): number {
    const n = this.entries.size;
    this.entries.clear();
    return n;
  }

  get size(): number {
    return this.entries.size;
  }
}

export interface AuthorizationRequest {
  headers: Record<string, string>;
  queryStringParameters: Record<string, string>;
  stageVariables: Record<string, string>;
  context: Record<string, unknown>;
}

/**
 * The identity source values of a request, or undefined if one is missing or empty. With caching on,
 * API Gateway answers 401 without calling the authorizer when that happens.
 */
export function identityValues(authorizer: ApiAuthorizer, request: AuthorizationRequest): string[] | undefined {
  const values: string[] = [];
  for (const source of authorizer.identitySources) {
    let value: unknown;
    if (source.kind === 'header') {
      const key = Object.keys(request.headers).find((k) => k.toLowerCase() === source.name.toLowerCase());
      value = key === undefined ? undefined : request.headers[key];
    } else if (source.kind === 'querystring') value = request.queryStringParameters[source.name];
    else if (source.kind === 'stageVariables') value = request.stageVariables[source.name];
    else value = request.context[source.name];
    if (value === undefined || value === null || String(value).trim() === '') return undefined;
    values.push(String(value));
  }
  return values;
}

export interface AuthorizeResult {
  output: AuthorizerOutput;
  cached: boolean;
  /** Milliseconds spent in the authorizer function (0 on a cache hit). */
  latencyMs: number;
}

/**
 * Authorizes one request: identity check, cache, invocation (`invoke` runs the authorizer function
 * and returns its result or throws a GatewayError), policy evaluation. Throws a GatewayError for
 * 401/403/500 outcomes.
 */
export async function authorize(
  authorizer: ApiAuthorizer,
  cache: AuthorizerCache,
  request: AuthorizationRequest,
  methodArn: string,
  invoke: () => Promise<{ ok: true; payload: unknown } | { ok: false; errorMessage: string }>,
): Promise<AuthorizeResult> {
  if (authorizer.type !== 'REQUEST' && authorizer.type !== 'TOKEN') {
    throw new GatewayError('AUTHORIZER_CONFIGURATION_ERROR', `Authorizer type ${authorizer.type} is not emulated locally`);
  }
  const caching = authorizer.ttlSeconds > 0;
  const values = identityValues(authorizer, request);
  // Without caching, REQUEST authorizers are called even when identity sources are absent.
  if (!values && (caching || authorizer.type === 'TOKEN')) throw gatewayErrors.unauthorized();
  if (authorizer.type === 'TOKEN' && authorizer.identityValidationExpression && values) {
    if (!new RegExp(authorizer.identityValidationExpression).test(values[0]!)) throw gatewayErrors.unauthorized();
  }
  const key = JSON.stringify(values ?? []);
  let output = caching ? cache.get(key) : undefined;
  let latencyMs = 0;
  const cached = output !== undefined;
  if (!output) {
    const started = performance.now();
    const result = await invoke();
    latencyMs = performance.now() - started;
    if (!result.ok) {
      // The one error message API Gateway understands: 'Unauthorized' → 401. Anything else → 500.
      if (result.errorMessage === 'Unauthorized') throw gatewayErrors.unauthorized();
      throw gatewayErrors.authorizerConfiguration();
    }
    output = validateAuthorizerOutput(result.payload);
    if (caching) cache.set(key, output, authorizer.ttlSeconds);
  }
  const decision = evaluatePolicy(output.policyDocument, methodArn);
  if (decision === 'Deny') throw gatewayErrors.explicitDeny();
  if (decision === 'NoMatch') throw gatewayErrors.notAllowed();
  return { output, cached, latencyMs };
}

/** requestContext.authorizer as the Lambda proxy integration receives it: context values stringified. */
export function authorizerContext(output: AuthorizerOutput, latencyMs: number): Record<string, unknown> {
  const context: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(output.context ?? {})) {
    if (v !== null && v !== undefined) context[k] = String(v);
  }
  return { ...context, principalId: output.principalId, integrationLatency: Math.round(latencyMs) };
}
