import {
  isGatewayResponseType,
  type GatewayResponseDefinition,
  type GatewayResponseType,
} from './apigateway-responses';
import { TemplateError, type LocalStack } from './template';

/**
 * The REST API as the template declares it: the resource tree (AWS::ApiGateway::Resource ParentId /
 * PathPart), the methods on each resource, the authorizers, the gateway responses and the stage.
 * There is no other route table: a route exists locally iff the template has its Method.
 */

export interface ApiIntegration {
  type: 'AWS_PROXY' | 'MOCK' | string;
  /** For AWS_PROXY: the Lambda function (logical id) named by Integration.Uri. */
  functionLogicalId?: string;
  /** API Gateway's integration timeout (29 s unless the template sets TimeoutInMillis). */
  timeoutMs: number;
  /** For MOCK: the first integration response (CORS preflight methods). */
  mockResponse?: { statusCode: number; headers: Record<string, string>; body: string };
}

export interface ApiMethod {
  logicalId: string;
  httpMethod: string;
  authorizationType: string;
  /** Logical id of the AWS::ApiGateway::Authorizer when AuthorizationType is CUSTOM. */
  authorizerLogicalId?: string;
  apiKeyRequired: boolean;
  integration: ApiIntegration;
}

export interface ApiResource {
  id: string;
  logicalId?: string;
  pathPart: string;
  /** Full resource path, e.g. `/v1/orders/{id}`. */
  path: string;
  children: ApiResource[];
  methods: Map<string, ApiMethod>;
}

export interface IdentitySource {
  /** `header` | `querystring` | `stageVariables` | `context` */
  kind: string;
  name: string;
}

export interface ApiAuthorizer {
  logicalId: string;
  id: string;
  name: string;
  type: 'REQUEST' | 'TOKEN' | string;
  functionLogicalId: string;
  identitySources: IdentitySource[];
  ttlSeconds: number;
  identityValidationExpression?: string;
}

export interface RestApiModel {
  logicalId: string;
  id: string;
  name: string;
  stage: string;
  stageVariables: Record<string, string>;
  root: ApiResource;
  authorizers: Map<string, ApiAuthorizer>;
  gatewayResponses: Map<GatewayResponseType, GatewayResponseDefinition>;
  binaryMediaTypes: string[];
}

/** Reads the (first, or named) AWS::ApiGateway::RestApi of the template. */
export function buildRestApi(stack: LocalStack, restApiLogicalId?: string): RestApiModel {
  const apis = stack.resourcesOfType('AWS::ApiGateway::RestApi');
  const entry = restApiLogicalId ? apis.find(([id]) => id === restApiLogicalId) : apis[0];
  if (!entry) throw new TemplateError(`The template has no AWS::ApiGateway::RestApi${restApiLogicalId ? ` named ${restApiLogicalId}` : ''}.`);
  const [logicalId, api] = entry;
  const id = stack.restApiId(logicalId);
  const belongs = (props: Record<string, unknown> | undefined, where: string) =>
    props?.RestApiId !== undefined && stack.resolve(props.RestApiId, where) === id;

  const root: ApiResource = { id: stack.rootResourceId(logicalId), pathPart: '', path: '/', children: [], methods: new Map() };
  const byId = new Map<string, ApiResource>([[root.id, root]]);
  const pending = stack
    .resourcesOfType('AWS::ApiGateway::Resource')
    .filter(([rid, r]) => belongs(r.Properties, `${rid}.RestApiId`))
    .map(([rid, r]) => ({
      logicalId: rid,
      id: stack.apiResourceId(rid),
      parentId: stack.resolveString(r.Properties?.ParentId, `${rid}.ParentId`),
      pathPart: stack.resolveString(r.Properties?.PathPart, `${rid}.PathPart`),
    }));
  // Parents may come after children in the template: attach level by level.
  while (pending.length) {
    const before = pending.length;
    for (let i = pending.length - 1; i >= 0; i--) {
      const r = pending[i]!;
      const parent = byId.get(r.parentId);
      if (!parent) continue;
      const node: ApiResource = {
        id: r.id,
        logicalId: r.logicalId,
        pathPart: r.pathPart,
        path: parent.path === '/' ? `/${r.pathPart}` : `${parent.path}/${r.pathPart}`,
        children: [],
        methods: new Map(),
      };
      parent.children.push(node);
      byId.set(node.id, node);
      pending.splice(i, 1);
    }
    if (pending.length === before) {
      throw new TemplateError(`API resources ${pending.map((p) => p.logicalId).join(', ')} have a ParentId that is not in the template.`);
    }
  }

  for (const [mid, m] of stack.resourcesOfType('AWS::ApiGateway::Method')) {
    const p = m.Properties ?? {};
    if (!belongs(p, `${mid}.RestApiId`)) continue;
    const resourceId = stack.resolveString(p.ResourceId, `${mid}.ResourceId`);
    const resource = byId.get(resourceId);
    if (!resource) throw new TemplateError(`Method ${mid} is on resource ${resourceId}, which is not in the template.`);
    const httpMethod = stack.resolveString(p.HttpMethod, `${mid}.HttpMethod`).toUpperCase();
    const authorizationType = p.AuthorizationType === undefined ? 'NONE' : stack.resolveString(p.AuthorizationType, `${mid}.AuthorizationType`);
    resource.methods.set(httpMethod, {
      logicalId: mid,
      httpMethod,
      authorizationType,
      authorizerLogicalId: p.AuthorizerId === undefined ? undefined : refTarget(p.AuthorizerId, `${mid}.AuthorizerId`),
      apiKeyRequired: p.ApiKeyRequired === true,
      integration: integration(stack, mid, (p.Integration ?? {}) as Record<string, unknown>),
    });
  }

  const authorizers = new Map<string, ApiAuthorizer>();
  for (const [aid, a] of stack.resourcesOfType('AWS::ApiGateway::Authorizer')) {
    const p = a.Properties ?? {};
    if (!belongs(p, `${aid}.RestApiId`)) continue;
    const type = stack.resolveString(p.Type, `${aid}.Type`);
    const uri = stack.resolveString(p.AuthorizerUri, `${aid}.AuthorizerUri`);
    authorizers.set(aid, {
      logicalId: aid,
      id: String(stack.ref(aid, aid)),
      name: p.Name === undefined ? aid : stack.resolveString(p.Name, `${aid}.Name`),
      type,
      functionLogicalId: functionFromUri(stack, uri, `${aid}.AuthorizerUri`),
      identitySources: parseIdentitySources(p.IdentitySource === undefined ? '' : stack.resolveString(p.IdentitySource, `${aid}.IdentitySource`)),
      // CloudFormation's default for AuthorizerResultTtlInSeconds is 300.
      ttlSeconds: p.AuthorizerResultTtlInSeconds === undefined ? 300 : Number(stack.resolve(p.AuthorizerResultTtlInSeconds)),
      identityValidationExpression:
        p.IdentityValidationExpression === undefined ? undefined : stack.resolveString(p.IdentityValidationExpression, `${aid}.IdentityValidationExpression`),
    });
  }

  const gatewayResponses = new Map<GatewayResponseType, GatewayResponseDefinition>();
  for (const [gid, g] of stack.resourcesOfType('AWS::ApiGateway::GatewayResponse')) {
    const p = (stack.resolve(g.Properties ?? {}, gid) ?? {}) as Record<string, unknown>;
    if (p.RestApiId !== id) continue;
    const type = String(p.ResponseType);
    if (!isGatewayResponseType(type)) throw new TemplateError(`${gid}.ResponseType ${type} is not a gateway response type.`);
    gatewayResponses.set(type, {
      type,
      statusCode: p.StatusCode === undefined ? undefined : Number(p.StatusCode),
      parameters: (p.ResponseParameters ?? {}) as Record<string, string>,
      templates: (p.ResponseTemplates ?? {}) as Record<string, string>,
    });
  }

  const stage = findStage(stack, id, logicalId);
  const props = (stack.resolve(api.Properties ?? {}, logicalId) ?? {}) as Record<string, unknown>;
  return {
    logicalId,
    id,
    name: typeof props.Name === 'string' ? props.Name : logicalId,
    stage: stage.name,
    stageVariables: stage.variables,
    root,
    authorizers,
    gatewayResponses,
    binaryMediaTypes: ((props.BinaryMediaTypes as string[] | undefined) ?? []).map((t) => t.replace('~1', '/')),
  };
}

function findStage(stack: LocalStack, restApiId: string, apiLogicalId: string): { name: string; variables: Record<string, string> } {
  for (const [sid, s] of stack.resourcesOfType('AWS::ApiGateway::Stage')) {
    const p = (stack.resolve(s.Properties ?? {}, sid) ?? {}) as Record<string, unknown>;
    if (p.RestApiId === restApiId && typeof p.StageName === 'string') {
      return { name: p.StageName, variables: (p.Variables ?? {}) as Record<string, string> };
    }
  }
  for (const [did, d] of stack.resourcesOfType('AWS::ApiGateway::Deployment')) {
    const p = (stack.resolve(d.Properties ?? {}, did) ?? {}) as Record<string, unknown>;
    if (p.RestApiId === restApiId && typeof p.StageName === 'string') return { name: p.StageName, variables: {} };
  }
  throw new TemplateError(`RestApi ${apiLogicalId} has no AWS::ApiGateway::Stage (or Deployment with StageName) in the template.`);
}

function refTarget(value: unknown, where: string): string {
  if (value && typeof value === 'object' && 'Ref' in value) return String((value as { Ref: unknown }).Ref);
  throw new TemplateError(`${where} must be a Ref to an AWS::ApiGateway::Authorizer, got ${JSON.stringify(value)}.`);
}

/** `arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<function arn>/invocations` → logical id. */
export function functionFromUri(stack: LocalStack, uri: string, where: string): string {
  const match = /:lambda:path\/[^/]+\/functions\/(.+?)\/invocations$/.exec(uri);
  if (!match) throw new TemplateError(`${where} is not a Lambda invocation URI: ${uri}`);
  // A qualified ARN (…:function:Name:alias) names the same function.
  const arn = match[1]!.split(':').slice(0, 7).join(':');
  const logicalId = stack.functionByArn(arn);
  if (!logicalId) throw new TemplateError(`${where} invokes ${match[1]}, which is not a function of this template.`);
  return logicalId;
}

function integration(stack: LocalStack, methodId: string, raw: Record<string, unknown>): ApiIntegration {
  const i = (stack.resolve(raw, `${methodId}.Integration`) ?? {}) as Record<string, unknown>;
  const type = String(i.Type ?? 'MOCK');
  const timeoutMs = i.TimeoutInMillis === undefined ? 29_000 : Number(i.TimeoutInMillis);
  if (type === 'AWS_PROXY') {
    return { type, timeoutMs, functionLogicalId: functionFromUri(stack, String(i.Uri), `${methodId}.Integration.Uri`) };
  }
  if (type === 'MOCK') {
    const responses = (i.IntegrationResponses as Record<string, unknown>[] | undefined) ?? [];
    const first = responses[0] ?? {};
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries((first.ResponseParameters ?? {}) as Record<string, string>)) {
      const m = /^method\.response\.header\.(.+)$/.exec(k);
      const literal = /^'(.*)'$/s.exec(v);
      if (m && literal) headers[m[1]!] = literal[1]!;
    }
    const templates = (first.ResponseTemplates ?? {}) as Record<string, string>;
    return {
      type,
      timeoutMs,
      mockResponse: { statusCode: Number(first.StatusCode ?? 200), headers, body: templates['application/json'] ?? '' },
    };
  }
  return { type, timeoutMs };
}

/** `method.request.header.Authorization, method.request.querystring.x` → identity sources. */
export function parseIdentitySources(value: string): IdentitySource[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const m = /^method\.request\.(header|querystring)\.(.+)$/.exec(s) ?? /^(stageVariables|context)\.(.+)$/.exec(s);
      if (!m) throw new TemplateError(`Identity source '${s}' is not understood (expected method.request.header.X, method.request.querystring.x, stageVariables.x or context.x).`);
      return { kind: m[1]!, name: m[2]! };
    });
}

export interface RouteMatch {
  resource: ApiResource;
  pathParameters: Record<string, string>;
}

/**
 * Finds the resource for a request path (without the stage), as API Gateway does: a literal path
 * part wins over `{param}`, which wins over a greedy `{param+}` (one or more remaining parts).
 * Like REST APIs (v1), parameter values stay percent-encoded as sent (HTTP APIs decode them).
 */
export function matchRoute(root: ApiResource, path: string): RouteMatch | undefined {
  const parts = path.split('/').filter((p, i, all) => p !== '' || (i > 0 && i < all.length - 1));
  return walk(root, parts, 0, {});
}

function walk(node: ApiResource, parts: string[], index: number, params: Record<string, string>): RouteMatch | undefined {
  if (index === parts.length) return { resource: node, pathParameters: params };
  const part = parts[index]!;
  const literal = node.children.find((c) => c.pathPart === part || c.pathPart === decode(part));
  if (literal) {
    const found = walk(literal, parts, index + 1, params);
    if (found) return found;
  }
  for (const child of node.children) {
    const m = /^\{([^}+]+)\}$/.exec(child.pathPart);
    if (!m || part === '') continue;
    const found = walk(child, parts, index + 1, { ...params, [m[1]!]: part });
    if (found) return found;
  }
  for (const child of node.children) {
    const m = /^\{(.+)\+\}$/.exec(child.pathPart);
    if (m) return { resource: child, pathParameters: { ...params, [m[1]!]: parts.slice(index).join('/') } };
  }
  return undefined;
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** The method for a verb on a resource, falling back to ANY. */
export function methodFor(resource: ApiResource, httpMethod: string): ApiMethod | undefined {
  return resource.methods.get(httpMethod.toUpperCase()) ?? resource.methods.get('ANY');
}

/** Every route, for the startup banner and tests: `GET /v1/orders/{id}`. */
export function listRoutes(root: ApiResource): { method: string; path: string; target: string }[] {
  const out: { method: string; path: string; target: string }[] = [];
  const visit = (node: ApiResource) => {
    for (const m of node.methods.values()) {
      out.push({ method: m.httpMethod, path: node.path, target: m.integration.functionLogicalId ?? m.integration.type });
    }
    for (const c of node.children) visit(c);
  };
  visit(root);
  return out.sort((a, b) => (a.path === b.path ? a.method.localeCompare(b.method) : a.path.localeCompare(b.path)));
}
