import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { gatewayErrors } from './apigateway-responses';
import type { AdminRoute } from './control-plane';
import { TemplateError, type LocalStack } from './template';

/**
 * API Gateway's throttling as the template declares it, and the API keys and usage plans behind it:
 *
 * - the stage's MethodSettings: one token bucket per method, with the most specific setting (`/path` +
 *   verb, then `/path` + `*`, then `/*` + verb, then `/*` + `*`), as API Gateway applies stage throttling
 *   to each method separately;
 * - AWS::ApiGateway::UsagePlan / ApiKey / UsagePlanKey, plus what the control API creates at run time
 *   (CreateApiKey, CreateUsagePlan, CreateUsagePlanKey…): on a method with ApiKeyRequired, the key (from
 *   `x-api-key`, or the authorizer's usageIdentifierKey when the API's ApiKeySourceType is AUTHORIZER) must
 *   be enabled and in a plan of the stage (else INVALID_API_KEY, 403), and spends that plan's bucket for the
 *   key, and the plan's per-method bucket if it declares one (else THROTTLED, 429).
 *
 * Buckets start full (burst) and refill continuously at the rate. Quotas and the account-level limit are
 * not emulated. Keys and plans created at run time survive restarts in `stateFile` (persistent mode).
 */

export interface Throttle {
  rateLimit: number;
  burstLimit: number;
}

interface MethodSetting {
  /** `/*` or a resource path such as `/checkout/{id}`. */
  resourcePath: string;
  httpMethod: string;
  throttle: Throttle;
}

export interface ApiKeyState {
  id: string;
  name?: string;
  description?: string;
  value: string;
  enabled: boolean;
  createdDate: number;
}

export interface ApiStage {
  apiId: string;
  stage: string;
  /** `/path/VERB` → its throttle for each key of the plan. */
  throttle?: Record<string, Throttle>;
}

export interface UsagePlanState {
  id: string;
  name: string;
  description?: string;
  throttle?: Throttle;
  apiStages: ApiStage[];
  keys: string[];
}

interface State {
  apiKeys: ApiKeyState[];
  usagePlans: UsagePlanState[];
}

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly throttle: Throttle,
    now: number,
  ) {
    this.tokens = throttle.burstLimit;
    this.last = now;
  }

  /** Takes one token if there is one; `now` in milliseconds. */
  take(now: number): boolean {
    this.tokens = Math.min(this.throttle.burstLimit, this.tokens + ((now - this.last) / 1000) * this.throttle.rateLimit);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

const apiError = (status: number, type: string, message: string) => Object.assign(new Error(message), { status, type });
const notFound = (what: string) => apiError(404, 'NotFoundException', `Invalid ${what} specified`);
const conflict = (message: string) => apiError(409, 'ConflictException', message);
const badRequest = (message: string) => apiError(400, 'BadRequestException', message);

export class UsagePlans {
  /** Internal: read and written by usageRoutes. */
  readonly state: State = { apiKeys: [], usagePlans: [] };
  readonly buckets = new Map<string, TokenBucket>();
  /** Plans and keys of the template: never written to the state file (the template recreates them). */
  private readonly fromTemplate = new Set<string>();

  constructor(
    readonly restApiId: string,
    readonly stage: string,
    /** `HEADER` (clients send x-api-key) or `AUTHORIZER` (the authorizer's usageIdentifierKey). */
    readonly keySource: string,
    private readonly methodSettings: MethodSetting[],
    template: State,
    private readonly stateFile?: string,
    private readonly clock: () => number = () => performance.now(),
  ) {
    for (const k of template.apiKeys) this.fromTemplate.add(k.id);
    for (const p of template.usagePlans) this.fromTemplate.add(p.id);
    this.state.apiKeys.push(...template.apiKeys);
    this.state.usagePlans.push(...template.usagePlans);
    if (stateFile && existsSync(stateFile)) {
      const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as State & { planKeys?: Record<string, string[]> };
      this.state.apiKeys.push(...saved.apiKeys.filter((k) => !this.fromTemplate.has(k.id)));
      for (const plan of saved.usagePlans) {
        const existing = this.state.usagePlans.find((p) => p.id === plan.id);
        if (existing) existing.keys = [...new Set([...existing.keys, ...plan.keys])];
        else this.state.usagePlans.push(plan);
      }
    }
  }

  /** The stage's method-level throttle (THROTTLED when the method's bucket is empty). */
  admitMethod(resourcePath: string, httpMethod: string): void {
    const setting = this.methodSetting(resourcePath, httpMethod);
    if (setting && !this.take(`method ${httpMethod} ${resourcePath}`, setting.throttle)) throw gatewayErrors.throttled();
  }

  /** The API key check and the usage plan's throttle of a method with ApiKeyRequired. */
  admitKey(value: string | undefined, resourcePath: string, httpMethod: string): void {
    const key = value === undefined ? undefined : this.state.apiKeys.find((k) => k.value === value && k.enabled);
    const plan = key && this.state.usagePlans.find((p) => p.keys.includes(key.id) && this.stageOf(p));
    if (!key || !plan) throw gatewayErrors.invalidApiKey();
    if (plan.throttle && !this.take(`plan ${plan.id} ${key.id}`, plan.throttle)) throw gatewayErrors.throttled();
    const perMethod = this.stageOf(plan)?.throttle?.[`${resourcePath}/${httpMethod}`];
    if (perMethod && !this.take(`plan ${plan.id} ${key.id} ${httpMethod} ${resourcePath}`, perMethod)) throw gatewayErrors.throttled();
  }

  private methodSetting(resourcePath: string, httpMethod: string): MethodSetting | undefined {
    const rank = (s: MethodSetting) =>
      (s.resourcePath === resourcePath ? 2 : s.resourcePath === '/*' ? 0 : -10) + (s.httpMethod === httpMethod ? 1 : s.httpMethod === '*' ? 0 : -10);
    return this.methodSettings
      .filter((s) => rank(s) >= 0)
      .sort((a, b) => rank(b) - rank(a))[0];
  }

  private take(bucket: string, throttle: Throttle): boolean {
    let b = this.buckets.get(bucket);
    if (!b) this.buckets.set(bucket, (b = new TokenBucket(throttle, this.clock())));
    return b.take(this.clock());
  }

  private stageOf(plan: UsagePlanState): ApiStage | undefined {
    return plan.apiStages.find((s) => s.apiId === this.restApiId && s.stage === this.stage);
  }

  save(): void {
    if (!this.stateFile) return;
    mkdirSync(dirname(this.stateFile), { recursive: true });
    const saved: State = {
      apiKeys: this.state.apiKeys.filter((k) => !this.fromTemplate.has(k.id)),
      usagePlans: this.state.usagePlans,
    };
    writeFileSync(this.stateFile, JSON.stringify(saved, null, 2), { mode: 0o600 });
  }

  plan(id: string): UsagePlanState {
    const plan = this.state.usagePlans.find((p) => p.id === id);
    if (!plan) throw notFound('Usage Plan ID');
    return plan;
  }

  key(id: string): ApiKeyState {
    const key = this.state.apiKeys.find((k) => k.id === id);
    if (!key) throw notFound('API Key identifier');
    return key;
  }
}

/**
 * API Gateway's control API for keys and plans, as the SDK (@aws-sdk/client-api-gateway) calls it. `get` is
 * called per request: the control plane starts before the API whose plans it serves.
 */
export function usageRoutes(get: () => UsagePlans): [method: string, path: string, handler: AdminRoute][] {
  const json = (body: Buffer) => (body.length ? (JSON.parse(body.toString('utf8')) as Record<string, any>) : {});
  const query = (url: string | undefined) => new URL(url ?? '/', 'http://localhost').searchParams;
  const showKey = (k: ApiKeyState, withValue: boolean) => ({
    id: k.id,
    name: k.name,
    description: k.description,
    enabled: k.enabled,
    createdDate: k.createdDate,
    lastUpdatedDate: k.createdDate,
    stageKeys: [],
    ...(withValue ? { value: k.value } : {}),
  });
  const showPlan = (p: UsagePlanState) => ({ id: p.id, name: p.name, description: p.description, throttle: p.throttle, apiStages: p.apiStages });
  // API Gateway's wire name for a page's list is `item` (the SDK turns it into `items`).
  const page = <T, R>(items: T[], q: URLSearchParams, show: (t: T) => R) => {
    const start = Number(q.get('position') ?? 0);
    const limit = Math.min(Number(q.get('limit') ?? 25), 500);
    const slice = items.slice(start, start + limit);
    return { item: slice.map(show), ...(start + limit < items.length ? { position: String(start + limit) } : {}) };
  };
  const parseThrottle = (t: any): Throttle | undefined =>
    t && (t.rateLimit !== undefined || t.burstLimit !== undefined) ? { rateLimit: Number(t.rateLimit ?? 0), burstLimit: Number(t.burstLimit ?? 0) } : undefined;
  const newId = () => randomBytes(5).toString('hex');
  return [
    [
      'POST',
      '/apikeys',
      async (_req, _p, body) => {
        const u = get();
        const b = json(body);
        const value = b.value ?? randomBytes(30).toString('base64url').slice(0, 40);
        if (typeof value !== 'string' || value.length < 20) throw badRequest('API Key value should be at least 20 characters');
        if (u.state.apiKeys.some((k) => k.value === value)) throw conflict('API Key already exists');
        const key: ApiKeyState = { id: newId(), name: b.name, description: b.description, value, enabled: b.enabled === true, createdDate: Math.floor(Date.now() / 1000) };
        u.state.apiKeys.push(key);
        u.save();
        return { status: 201, body: showKey(key, true) };
      },
    ],
    [
      'GET',
      '/apikeys',
      async (req) => {
        const u = get();
        const q = query(req.url);
        const name = q.get('name');
        const keys = u.state.apiKeys.filter((k) => !name || (k.name ?? '').startsWith(name));
        return { status: 200, body: page(keys, q, (k) => showKey(k, q.get('includeValues') === 'true')) };
      },
    ],
    ['GET', '/apikeys/{api_Key}', async (req, p) => ({ status: 200, body: showKey(get().key(p.api_Key!), query(req.url).get('includeValue') === 'true') })],
    [
      'DELETE',
      '/apikeys/{api_Key}',
      async (_req, p) => {
        const u = get();
        const key = u.key(p.api_Key!);
        u.state.apiKeys.splice(u.state.apiKeys.indexOf(key), 1);
        for (const plan of u.state.usagePlans) plan.keys = plan.keys.filter((k) => k !== key.id);
        u.save();
        return { status: 202 };
      },
    ],
    [
      'POST',
      '/usageplans',
      async (_req, _p, body) => {
        const u = get();
        const b = json(body);
        if (typeof b.name !== 'string' || !b.name) throw badRequest('Usage plan name is required');
        const plan: UsagePlanState = {
          id: newId(),
          name: b.name,
          description: b.description,
          throttle: parseThrottle(b.throttle),
          apiStages: ((b.apiStages ?? []) as any[]).map((s) => ({ apiId: String(s.apiId), stage: String(s.stage), throttle: s.throttle })),
          keys: [],
        };
        u.state.usagePlans.push(plan);
        u.save();
        return { status: 201, body: showPlan(plan) };
      },
    ],
    [
      'GET',
      '/usageplans',
      async (req) => {
        const u = get();
        const q = query(req.url);
        const keyId = q.get('keyId');
        return { status: 200, body: page(u.state.usagePlans.filter((p) => !keyId || p.keys.includes(keyId)), q, showPlan) };
      },
    ],
    ['GET', '/usageplans/{usageplanId}', async (_req, p) => ({ status: 200, body: showPlan(get().plan(p.usageplanId!)) })],
    [
      'PATCH',
      '/usageplans/{usageplanId}',
      async (_req, p, body) => {
        const u = get();
        const plan = u.plan(p.usageplanId!);
        for (const op of (json(body).patchOperations ?? []) as { op: string; path: string; value?: string }[]) {
          const field = /^\/throttle\/(rateLimit|burstLimit)$/.exec(op.path)?.[1] as keyof Throttle | undefined;
          if (field && op.op === 'replace') {
            plan.throttle = { rateLimit: 0, burstLimit: 0, ...plan.throttle, [field]: Number(op.value) };
          } else if (op.path === '/apiStages' && (op.op === 'add' || op.op === 'remove')) {
            const [apiId, stage] = String(op.value).split(':');
            plan.apiStages = plan.apiStages.filter((s) => !(s.apiId === apiId && s.stage === stage));
            if (op.op === 'add') plan.apiStages.push({ apiId: apiId!, stage: stage! });
          } else {
            throw badRequest(`The local cloud does not emulate the patch operation ${op.op} ${op.path} on a usage plan`);
          }
        }
        // New limits start from a full bucket, as a fresh plan would.
        for (const id of [...u.buckets.keys()]) if (id.startsWith(`plan ${plan.id} `)) u.buckets.delete(id);
        u.save();
        return { status: 200, body: showPlan(plan) };
      },
    ],
    [
      'DELETE',
      '/usageplans/{usageplanId}',
      async (_req, p) => {
        const u = get();
        const plan = u.plan(p.usageplanId!);
        if (plan.apiStages.length) throw badRequest('Cannot delete Usage Plan with associated API stages. Remove the stages first.');
        u.state.usagePlans.splice(u.state.usagePlans.indexOf(plan), 1);
        u.save();
        return { status: 202 };
      },
    ],
    [
      'POST',
      '/usageplans/{usageplanId}/keys',
      async (_req, p, body) => {
        const u = get();
        const plan = u.plan(p.usageplanId!);
        const b = json(body);
        if (b.keyType !== 'API_KEY') throw badRequest(`Invalid keyType ${JSON.stringify(b.keyType)}: API_KEY is the only key type`);
        const key = u.key(String(b.keyId));
        const stages = new Set(plan.apiStages.map((s) => `${s.apiId}:${s.stage}`));
        const clash = u.state.usagePlans.find(
          (other) => other.keys.includes(key.id) && other.apiStages.some((s) => stages.has(`${s.apiId}:${s.stage}`)),
        );
        if (clash) throw conflict(`Usage Plan ${clash.id} cannot be added because API Key ${key.id} cannot reference multiple Usage Plans with the same API Stage`);
        plan.keys.push(key.id);
        u.save();
        return { status: 201, body: { id: key.id, type: 'API_KEY', name: key.name, value: key.value } };
      },
    ],
    [
      'GET',
      '/usageplans/{usageplanId}/keys',
      async (req, p) => {
        const u = get();
        const plan = u.plan(p.usageplanId!);
        return { status: 200, body: page(plan.keys.map((id) => u.key(id)), query(req.url), (k) => ({ id: k.id, type: 'API_KEY', name: k.name, value: k.value })) };
      },
    ],
    [
      'DELETE',
      '/usageplans/{usageplanId}/keys/{keyId}',
      async (_req, p) => {
        const u = get();
        const plan = u.plan(p.usageplanId!);
        if (!plan.keys.includes(p.keyId!)) throw notFound('Usage Plan Key');
        plan.keys = plan.keys.filter((k) => k !== p.keyId);
        u.save();
        return { status: 202 };
      },
    ],
  ];
}

/** Reads the stage's throttling, the API's key source and the template's usage plans and keys. */
export function buildUsagePlans(
  stack: LocalStack,
  api: { logicalId: string; id: string; stage: string },
  options: { stateFile?: string; clock?: () => number } = {},
): UsagePlans {
  const props = (stack.resolve(stack.resource(api.logicalId).Properties ?? {}, api.logicalId) ?? {}) as Record<string, unknown>;
  const keySource = typeof props.ApiKeySourceType === 'string' ? props.ApiKeySourceType : 'HEADER';
  const methodSettings: MethodSetting[] = [];
  for (const [sid, s] of stack.resourcesOfType('AWS::ApiGateway::Stage')) {
    const p = (stack.resolve(s.Properties ?? {}, sid) ?? {}) as Record<string, any>;
    if (p.RestApiId !== api.id || p.StageName !== api.stage) continue;
    for (const m of (p.MethodSettings ?? []) as Record<string, any>[]) {
      if (m.ThrottlingRateLimit === undefined && m.ThrottlingBurstLimit === undefined) continue;
      methodSettings.push({
        resourcePath: m.ResourcePath === '/*' ? '/*' : String(m.ResourcePath).slice(1).replaceAll('~1', '/'),
        httpMethod: String(m.HttpMethod ?? '*').toUpperCase(),
        // CloudFormation's "unset" is -1 for each; unset means the account's limits, i.e. no local bucket.
        throttle: { rateLimit: Number(m.ThrottlingRateLimit ?? 10_000), burstLimit: Number(m.ThrottlingBurstLimit ?? 5_000) },
      });
    }
  }
  const apiKeys: ApiKeyState[] = stack.resourcesOfType('AWS::ApiGateway::ApiKey').map(([kid, k]) => {
    const p = (stack.resolve(k.Properties ?? {}, kid) ?? {}) as Record<string, any>;
    if (typeof p.Value !== 'string') throw new TemplateError(`${kid}: the local cloud needs an explicit Value for a template API key.`);
    return { id: String(stack.ref(kid, kid)), name: p.Name, description: p.Description, value: p.Value, enabled: p.Enabled === true, createdDate: 0 };
  });
  const usagePlans: UsagePlanState[] = stack.resourcesOfType('AWS::ApiGateway::UsagePlan').map(([pid, u]) => {
    const p = (stack.resolve(u.Properties ?? {}, pid) ?? {}) as Record<string, any>;
    const throttle = (t: any): Throttle | undefined => (t && t.RateLimit !== undefined ? { rateLimit: Number(t.RateLimit), burstLimit: Number(t.BurstLimit ?? 0) } : undefined);
    return {
      id: String(stack.ref(pid, pid)),
      name: String(p.UsagePlanName ?? pid),
      description: p.Description,
      throttle: throttle(p.Throttle),
      apiStages: ((p.ApiStages ?? []) as any[]).map((s) => ({
        apiId: String(s.ApiId),
        stage: String(s.Stage),
        throttle: Object.fromEntries(Object.entries((s.Throttle ?? {}) as Record<string, any>).map(([k, v]) => [k, throttle(v)!])),
      })),
      keys: [],
    };
  });
  for (const [kid, k] of stack.resourcesOfType('AWS::ApiGateway::UsagePlanKey')) {
    const p = (stack.resolve(k.Properties ?? {}, kid) ?? {}) as Record<string, any>;
    usagePlans.find((u) => u.id === p.UsagePlanId)?.keys.push(String(p.KeyId));
  }
  return new UsagePlans(api.id, api.stage, keySource, methodSettings, { apiKeys, usagePlans }, options.stateFile, options.clock);
}
