import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authorize, authorizerContext, AuthorizerCache } from './apigateway-authorizer';
import { GatewayError, gatewayErrors, renderGatewayResponse } from './apigateway-responses';
import { matchRoute, methodFor, type ApiMethod, type RestApiModel, type RouteMatch } from './apigateway-routes';
import type { UsagePlans } from './apigateway-usage';
import type { LocalIam } from './iam';
import { BodyTooLargeError, listen, readBody, requestRecord, type LocalServer } from './http';
import type { LambdaRuntime } from './lambda';

/**
 * The REST API's data plane on http://127.0.0.1:PORT/<stage>/…, like
 * https://<restApiId>.execute-api.<region>.amazonaws.com/<stage>/….
 *
 * For each request: stage and route from the template's resource tree, the REQUEST authorizer (with
 * its cache and policy evaluation), then the AWS_PROXY integration with a REST API (v1) proxy event.
 * Errors API Gateway itself produces go through the template's gateway responses.
 */

/** API Gateway's payload limit for REST APIs. */
export const MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;

export interface ApiGatewayOptions {
  region: string;
  account: string;
  /** Prints one line per request. @default false */
  accessLog?: (line: string) => void;
  /** Throttling, API keys and usage plans (apigateway-usage.ts). @default - none: nothing is throttled */
  usage?: UsagePlans;
  /** Checks that each function's resource policy (AWS::Lambda::Permission) lets API Gateway invoke it. */
  iam?: LocalIam;
  /** Sees every response sent, with the route it matched (the e2e tier's contract check, test/e2e/contract.ts). @default none */
  onResponse?: (exchange: ApiExchange) => void;
}

/** One response as sent: `resource` is the template's route path (`/v1/orders/{id}`), undefined when none matched. */
export interface ApiExchange {
  method: string;
  resource?: string;
  status: number;
  contentType?: string;
  body: string;
}

export interface ApiGatewayStats {
  requests: number;
  byStatus: Record<string, number>;
  authorizer: { invocations: number; cacheHits: number; cacheMisses: number };
}

/** What an AWS_PROXY Lambda may return (every field optional, no others allowed). */
const PROXY_RESULT_KEYS = new Set(['statusCode', 'headers', 'multiValueHeaders', 'body', 'isBase64Encoded']);

export class LocalApiGateway {
  /** One result cache per authorizer (logical id). */
  readonly caches = new Map<string, AuthorizerCache>();
  private counters = { requests: 0, authorizerInvocations: 0 };
  private readonly byStatus = new Map<string, number>();
  private server?: LocalServer;
  readonly usage?: UsagePlans;

  constructor(
    readonly model: RestApiModel,
    private readonly runtime: Pick<LambdaRuntime, 'invoke' | 'get'>,
    private readonly options: ApiGatewayOptions,
  ) {
    for (const id of model.authorizers.keys()) this.caches.set(id, new AuthorizerCache());
    this.usage = options.usage;
  }

  async start(port: number): Promise<LocalServer> {
    this.server = await listen((req, res) => this.handle(req, res), port);
    return this.server;
  }

  async stop(): Promise<void> {
    await this.server?.close();
  }

  /** FlushStageAuthorizersCache: every authorizer of the stage forgets its results. */
  flushAuthorizerCache(): number {
    let n = 0;
    for (const cache of this.caches.values()) n += cache.flush();
    return n;
  }

  stats(): ApiGatewayStats {
    let cacheHits = 0;
    let cacheMisses = 0;
    for (const c of this.caches.values()) {
      cacheHits += c.hits;
      cacheMisses += c.misses;
    }
    return {
      requests: this.counters.requests,
      byStatus: Object.fromEntries(this.byStatus),
      authorizer: { invocations: this.counters.authorizerInvocations, cacheHits, cacheMisses },
    };
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const now = new Date();
    const requestId = randomUUID();
    const extendedRequestId = randomBytes(12).toString('base64').replace(/[+/=]/g, 'A').slice(0, 16);
    const traceId = `Root=1-${Math.floor(now.getTime() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;
    const url = new URL(req.url ?? '/', 'http://localhost');
    const httpMethod = (req.method ?? 'GET').toUpperCase();
    const stagePrefix = `/${this.model.stage}`;
    const fullPath = url.pathname;
    const path = fullPath === stagePrefix ? '/' : fullPath.startsWith(`${stagePrefix}/`) ? fullPath.slice(stagePrefix.length) : undefined;
    const { headers, multiValueHeaders } = eventHeaders(req, traceId, this.serverPort());
    const query = queryParameters(url);
    const baseContext: Record<string, unknown> = {
      requestId,
      extendedRequestId,
      stage: this.model.stage,
      apiId: this.model.id,
      httpMethod,
      path: fullPath,
      // Its own address, never the Host header: handlers must not build public URLs from request data.
      domainName: `127.0.0.1:${this.serverPort()}`,
      identity: { sourceIp: sourceIp(req) },
    };
    let resource: string | undefined;
    const send = (status: number, outHeaders: Record<string, string | string[]>, body: Buffer | string) => {
      if (res.headersSent) return;
      if (this.options.onResponse) {
        const contentType = Object.entries(outHeaders).find(([name]) => name.toLowerCase() === 'content-type')?.[1];
        this.options.onResponse({ method: httpMethod, resource, status, contentType: contentType === undefined ? undefined : String(contentType), body: body.toString() });
      }
      const finalHeaders: Record<string, string | string[]> = {
        ...outHeaders,
        'x-amzn-RequestId': requestId,
        'x-amz-apigw-id': extendedRequestId,
        'X-Amzn-Trace-Id': traceId,
        'Content-Length': String(Buffer.byteLength(body)),
      };
      res.writeHead(status, finalHeaders);
      res.end(httpMethod === 'HEAD' ? undefined : body);
      const klass = `${Math.floor(status / 100)}xx`;
      this.byStatus.set(klass, (this.byStatus.get(klass) ?? 0) + 1);
      this.options.accessLog?.(`${httpMethod} ${fullPath} → ${status} (${Math.round(performance.now() - started)} ms)`);
    };
    const fail = (error: GatewayError, match?: RouteMatch) => {
      const rendered = renderGatewayResponse(this.model.gatewayResponses, error, {
        context: { ...baseContext, resourcePath: match?.resource.path, resourceId: match?.resource.id },
        request: { headers, querystring: query.single, path: match?.pathParameters },
        stageVariables: this.model.stageVariables,
      });
      send(rendered.statusCode, rendered.headers, rendered.body);
    };
    this.counters.requests++;

    try {
      let body: Buffer;
      try {
        body = await readBody(req, MAX_PAYLOAD_BYTES);
      } catch (error) {
        if (error instanceof BodyTooLargeError) throw gatewayErrors.requestTooLarge();
        throw error;
      }
      if (path === undefined) throw gatewayErrors.missingAuthenticationToken();
      const match = matchRoute(this.model.root, path);
      const method = match && methodFor(match.resource, httpMethod);
      if (!match || !method) throw gatewayErrors.missingAuthenticationToken();
      resource = match.resource.path;

      const requestContext: Record<string, unknown> = {
        resourceId: match.resource.id,
        resourcePath: match.resource.path,
        httpMethod,
        extendedRequestId,
        requestTime: clf(now),
        path: fullPath,
        accountId: this.options.account,
        protocol: `HTTP/${req.httpVersion}`,
        stage: this.model.stage,
        domainPrefix: String(baseContext.domainName).split('.')[0],
        requestTimeEpoch: now.getTime(),
        requestId,
        identity: identity(req),
        domainName: baseContext.domainName,
        deploymentId: this.model.id.slice(0, 6),
        apiId: this.model.id,
      };

      try {
        this.usage?.admitMethod(match.resource.path, httpMethod);
        let usageIdentifierKey: string | undefined;
        if (method.authorizationType === 'AWS_IAM') {
          const caller = await this.authenticateIam(req, url, httpMethod, path, body);
          requestContext.identity = { ...(requestContext.identity as Record<string, unknown>), ...caller };
        }
        if (method.authorizationType === 'CUSTOM') {
          const authorized = await this.runAuthorizer(method, match, { httpMethod, path, headers, multiValueHeaders, query, requestContext });
          requestContext.authorizer = authorized.context;
          usageIdentifierKey = authorized.usageIdentifierKey;
        }
        if (method.apiKeyRequired && this.usage) {
          const key = this.usage.keySource === 'AUTHORIZER' ? usageIdentifierKey : headerValue(headers, 'x-api-key');
          this.usage.admitKey(key, match.resource.path, httpMethod);
          (requestContext.identity as Record<string, unknown>).apiKey = key;
        }
        await this.integrate(method, match, { httpMethod, path, headers, multiValueHeaders, query, requestContext, body, send });
      } catch (error) {
        if (error instanceof GatewayError) {
          fail(error, match);
          return;
        }
        throw error;
      }
    } catch (error) {
      if (error instanceof GatewayError) fail(error);
      else {
        process.stderr.write(`[apigateway] ${httpMethod} ${fullPath}: ${(error as Error).stack ?? String(error)}\n`);
        fail(gatewayErrors.apiConfiguration());
      }
    }
  }

  /**
   * An AWS_IAM method: the request's SigV4 signature (service execute-api), then `execute-api:Invoke` on the method's
   * ARN against the caller's identity policies, as API Gateway asks IAM. Returns requestContext.identity's IAM fields.
   */
  private async authenticateIam(req: IncomingMessage, url: URL, httpMethod: string, path: string, body: Buffer): Promise<Record<string, unknown>> {
    const iam = this.options.iam;
    // Without IAM there is nobody to check the signature against: refuse rather than let anyone through.
    if (!iam) throw new GatewayError('API_CONFIGURATION_ERROR', 'AWS_IAM methods need the local IAM (LocalIam) to verify callers');
    const checked = await iam.verifySignature({ method: httpMethod, path: url.pathname, query: url.searchParams, headers: req.headers, body }, 'execute-api');
    if (!checked.ok) {
      if (checked.problem === 'missing') throw gatewayErrors.missingAuthenticationToken();
      if (checked.problem === 'expired') throw new GatewayError('INVALID_SIGNATURE', checked.message, undefined, 'InvalidSignatureException');
      if (checked.problem === 'unknown_key') throw new GatewayError('INVALID_SIGNATURE', checked.message, undefined, 'UnrecognizedClientException');
      if (checked.problem === 'incomplete') throw new GatewayError('INVALID_SIGNATURE', checked.message, undefined, 'IncompleteSignatureException');
      throw new GatewayError('INVALID_SIGNATURE', checked.message);
    }
    const resource = `arn:aws:execute-api:${this.options.region}:${this.options.account}:${this.model.id}/${this.model.stage}/${httpMethod}/${path.slice(1)}`;
    const verdict = await iam.authorize(checked.principal, [{ action: 'execute-api:Invoke', resource }]);
    if (!verdict.allowed && !verdict.served) {
      throw new GatewayError('ACCESS_DENIED', `User: ${checked.principal.arn} is not authorized to perform: execute-api:Invoke on resource: ${resource}`);
    }
    return iamIdentity(checked.principal, checked.accessKeyId, this.options.account);
  }

  /** API Gateway answers 500 when the function's resource policy does not let it invoke ("Invalid permissions on Lambda function"). */
  private async checkInvokePermission(functionLogicalId: string, sourceArn: string): Promise<void> {
    if (!this.options.iam) return;
    const verdict = await this.options.iam.authorizeService('apigateway.amazonaws.com', this.runtime.get(functionLogicalId).definition.arn, sourceArn);
    if (!verdict.allowed && !verdict.served) throw gatewayErrors.apiConfiguration();
  }

  private serverPort(): number {
    return this.server?.port ?? 0;
  }

  private async runAuthorizer(
    method: ApiMethod,
    match: RouteMatch,
    r: RequestParts,
  ): Promise<{ context: Record<string, unknown>; usageIdentifierKey?: string }> {
    const authorizer = method.authorizerLogicalId ? this.model.authorizers.get(method.authorizerLogicalId) : undefined;
    if (!authorizer) throw gatewayErrors.authorizerConfiguration();
    const methodArn = `arn:aws:execute-api:${this.options.region}:${this.options.account}:${this.model.id}/${this.model.stage}/${r.httpMethod}/${r.path.slice(1)}`;
    const event =
      authorizer.type === 'TOKEN'
        ? {
            type: 'TOKEN',
            methodArn,
            authorizationToken: r.headers[Object.keys(r.headers).find((k) => k.toLowerCase() === authorizer.identitySources[0]?.name.toLowerCase()) ?? ''],
          }
        : {
            type: 'REQUEST',
            methodArn,
            resource: match.resource.path,
            path: r.path,
            httpMethod: r.httpMethod,
            headers: r.headers,
            multiValueHeaders: r.multiValueHeaders,
            queryStringParameters: r.query.single,
            multiValueQueryStringParameters: r.query.multi,
            pathParameters: match.pathParameters,
            stageVariables: this.model.stageVariables,
            requestContext: r.requestContext,
          };
    const cache = this.caches.get(authorizer.logicalId)!;
    const result = await authorize(
      authorizer,
      cache,
      { headers: r.headers, queryStringParameters: r.query.single, stageVariables: this.model.stageVariables, context: r.requestContext },
      methodArn,
      async () => {
        this.counters.authorizerInvocations++;
        await this.checkInvokePermission(authorizer.functionLogicalId, `arn:aws:execute-api:${this.options.region}:${this.options.account}:${this.model.id}/authorizers/${authorizer.id}`);
        const out = await this.runtime.invoke(authorizer.functionLogicalId, event);
        return out.ok ? { ok: true, payload: out.payload } : { ok: false, errorMessage: out.error.errorMessage };
      },
    );
    return { context: authorizerContext(result.output, result.latencyMs), usageIdentifierKey: result.output.usageIdentifierKey };
  }

  private async integrate(method: ApiMethod, match: RouteMatch, r: RequestParts & { body: Buffer; send: Sender }): Promise<void> {
    const integration = method.integration;
    if (integration.type === 'MOCK' && integration.mockResponse) {
      const m = integration.mockResponse;
      r.send(m.statusCode, { 'Content-Type': 'application/json', ...m.headers }, m.body);
      return;
    }
    if (integration.type !== 'AWS_PROXY' || !integration.functionLogicalId) {
      throw new GatewayError('API_CONFIGURATION_ERROR', `Integration type ${integration.type} is not emulated locally`);
    }
    const contentType = r.headers[Object.keys(r.headers).find((k) => k.toLowerCase() === 'content-type') ?? ''] ?? '';
    const binary = this.model.binaryMediaTypes.some((t) => mediaTypeMatches(t, contentType));
    const event = {
      resource: match.resource.path,
      path: r.path,
      httpMethod: r.httpMethod,
      headers: r.headers,
      multiValueHeaders: r.multiValueHeaders,
      queryStringParameters: emptyToNull(r.query.single),
      multiValueQueryStringParameters: emptyToNull(r.query.multi),
      pathParameters: emptyToNull(match.pathParameters),
      stageVariables: emptyToNull(this.model.stageVariables),
      requestContext: r.requestContext,
      body: r.body.length === 0 ? null : binary ? r.body.toString('base64') : r.body.toString('utf8'),
      isBase64Encoded: binary && r.body.length > 0,
    };
    await this.checkInvokePermission(
      integration.functionLogicalId,
      `arn:aws:execute-api:${this.options.region}:${this.options.account}:${this.model.id}/${this.model.stage}/${r.httpMethod}/${r.path.slice(1)}`,
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(gatewayErrors.integrationTimeout()), integration.timeoutMs);
    });
    let result;
    try {
      result = await Promise.race([this.runtime.invoke(integration.functionLogicalId, event), timeout]);
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw gatewayErrors.integrationFailure();
    } finally {
      clearTimeout(timer);
    }
    if (!result.ok) throw gatewayErrors.lambdaFailure();
    const response = proxyResponse(result.payload);
    if (!response) throw gatewayErrors.lambdaFailure();
    r.send(response.statusCode, response.headers, response.body);
  }
}

type Sender = (status: number, headers: Record<string, string | string[]>, body: Buffer | string) => void;

interface RequestParts {
  httpMethod: string;
  path: string;
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
  query: { single: Record<string, string>; multi: Record<string, string[]> };
  requestContext: Record<string, unknown>;
}

/** Validates and converts an AWS_PROXY result; undefined = "Malformed Lambda proxy response" (502). */
export function proxyResponse(payload: unknown): { statusCode: number; headers: Record<string, string | string[]>; body: Buffer } | undefined {
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return undefined;
  const p = payload as Record<string, unknown>;
  if (Object.keys(p).some((k) => !PROXY_RESULT_KEYS.has(k))) return undefined;
  const statusCode = p.statusCode === undefined || p.statusCode === null ? 200 : Number(p.statusCode);
  if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 599) return undefined;
  if (p.body !== undefined && p.body !== null && typeof p.body !== 'string') return undefined;
  if (p.isBase64Encoded !== undefined && p.isBase64Encoded !== null && typeof p.isBase64Encoded !== 'boolean') return undefined;
  const headers: Record<string, string | string[]> = {};
  const lower = new Map<string, string>();
  const put = (name: string, values: string[]) => {
    const existing = lower.get(name.toLowerCase());
    const key = existing ?? name;
    lower.set(name.toLowerCase(), key);
    const previous = headers[key];
    headers[key] = previous === undefined ? (values.length === 1 ? values[0]! : values) : [...[previous].flat(), ...values];
  };
  if (p.headers !== undefined && p.headers !== null) {
    if (typeof p.headers !== 'object' || Array.isArray(p.headers)) return undefined;
    for (const [k, v] of Object.entries(p.headers)) {
      if (typeof v !== 'string' && typeof v !== 'boolean' && typeof v !== 'number') return undefined;
      put(k, [String(v)]);
    }
  }
  if (p.multiValueHeaders !== undefined && p.multiValueHeaders !== null) {
    if (typeof p.multiValueHeaders !== 'object' || Array.isArray(p.multiValueHeaders)) return undefined;
    for (const [k, v] of Object.entries(p.multiValueHeaders)) {
      const values = Array.isArray(v) ? v : [v];
      if (values.some((x) => typeof x !== 'string' && typeof x !== 'boolean' && typeof x !== 'number')) return undefined;
      // A header given in both maps: API Gateway keeps the multi-value list.
      const existing = lower.get(k.toLowerCase());
      if (existing) delete headers[existing];
      lower.delete(k.toLowerCase());
      put(k, values.map(String));
    }
  }
  if (!lower.has('content-type')) headers['Content-Type'] = 'application/json';
  const text = typeof p.body === 'string' ? p.body : '';
  return { statusCode, headers, body: p.isBase64Encoded ? Buffer.from(text, 'base64') : Buffer.from(text, 'utf8') };
}

/** Headers of the proxy event: as sent (last value wins in `headers`), plus what API Gateway adds. */
export function eventHeaders(req: IncomingMessage, traceId: string, port: number): { headers: Record<string, string>; multiValueHeaders: Record<string, string[]> } {
  const headers = requestRecord<string>();
  const multiValueHeaders = requestRecord<string[]>();
  const add = (name: string, value: string) => {
    const key = Object.keys(multiValueHeaders).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
    headers[key] = value;
    (multiValueHeaders[key] ??= []).push(value);
  };
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    // Hop-by-hop and framing headers do not reach the integration.
    if (lower === 'connection' || lower === 'content-length' || lower === 'keep-alive' || lower === 'transfer-encoding') continue;
    // Behind API Gateway's front door these two arrive capitalized.
    add(lower === 'authorization' ? 'Authorization' : lower === 'user-agent' ? 'User-Agent' : name, raw[i + 1]!);
  }
  const forwardedFor = [headers['X-Forwarded-For'] ?? headers['x-forwarded-for'], sourceIp(req)].filter(Boolean).join(', ');
  for (const k of Object.keys(headers)) {
    if (/^x-forwarded-(for|port|proto)$|^x-amzn-trace-id$/i.test(k)) {
      delete headers[k];
      delete multiValueHeaders[k];
    }
  }
  add('X-Amzn-Trace-Id', traceId);
  add('X-Forwarded-For', forwardedFor);
  add('X-Forwarded-Port', String(port));
  // API Gateway says https; the local cloud is plain http.
  add('X-Forwarded-Proto', 'http');
  return { headers, multiValueHeaders };
}

function queryParameters(url: URL): { single: Record<string, string>; multi: Record<string, string[]> } {
  const single = requestRecord<string>();
  const multi = requestRecord<string[]>();
  for (const [k, v] of url.searchParams) {
    single[k] = v;
    (multi[k] ??= []).push(v);
  }
  return { single, multi };
}

function sourceIp(req: IncomingMessage): string {
  return (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
}

function identity(req: IncomingMessage): Record<string, unknown> {
  return {
    cognitoIdentityPoolId: null,
    accountId: null,
    cognitoIdentityId: null,
    caller: null,
    sourceIp: sourceIp(req),
    principalOrgId: null,
    accessKey: null,
    cognitoAuthenticationType: null,
    cognitoAuthenticationProvider: null,
    userArn: null,
    userAgent: req.headers['user-agent'] ?? null,
    user: null,
  };
}

/**
 * requestContext.identity of a SigV4-authenticated request, as API Gateway fills it for AWS_IAM: the principal's ARN,
 * its account, the access key, and caller/user (an assumed role's `<role id>:<session>`, a user's id, the account for
 * root). Role and user ids (AROA…, AIDA…) are made up here from the ARN: the local cloud has no IAM ids.
 */
function iamIdentity(principal: { arn: string; principalArn: string }, accessKey: string, account: string): Record<string, unknown> {
  const id = (prefix: string) => `${prefix}${createHash('sha256').update(principal.principalArn).digest('hex').slice(0, 17).toUpperCase()}`;
  const session = /:assumed-role\/[^/]+\/(.+)$/.exec(principal.arn)?.[1];
  const caller = session !== undefined ? `${id('AROA')}:${session}` : principal.arn.endsWith(':root') ? account : id('AIDA');
  return {
    cognitoIdentityPoolId: null,
    cognitoIdentityId: null,
    cognitoAuthenticationType: null,
    cognitoAuthenticationProvider: null,
    principalOrgId: null,
    accountId: account,
    accessKey,
    caller,
    user: caller,
    userArn: principal.arn,
  };
}

function headerValue(headers: Record<string, string>, name: string): string | undefined {
  return headers[Object.keys(headers).find((k) => k.toLowerCase() === name) ?? ''];
}

function emptyToNull<T extends object>(value: T): T | null {
  return Object.keys(value).length === 0 ? null : value;
}

function mediaTypeMatches(pattern: string, contentType: string): boolean {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (!type) return false;
  const p = pattern.toLowerCase();
  if (p === '*/*') return true;
  if (p.endsWith('/*')) return type.startsWith(p.slice(0, -1));
  return p === type;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `25/Nov/2025:18:03:01 +0000`, API Gateway's requestTime format. */
function clf(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}
