import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { LocalApiGateway } from './apigateway';
import { usageRoutes } from './apigateway-usage';
import { listen, readBody, sendJson, type LocalServer } from './http';
import { INVALID_TOKEN_MESSAGE, type LocalIam } from './iam';

/**
 * The local control plane, on its own port (AWS_ENDPOINT_URL_API_GATEWAY, and AWS_ENDPOINT_URL for any
 * service the local cloud does not emulate):
 *
 * - API Gateway's REST control API, the part operators use: FlushStageAuthorizersCache
 *   (`DELETE /restapis/{id}/stages/{stage}/cache/authorizers`), FlushStageCache, GetRestApis,
 *   GetRestApi, GetStages, GetStage; API keys and usage plans (CreateApiKey, GetApiKeys, DeleteApiKey,
 *   CreateUsagePlan, GetUsagePlans, UpdateUsagePlan, CreateUsagePlanKey, DeleteUsagePlanKey…). The operator
 *   CLI revokes a key, flushes and provisions rate limits exactly as in AWS.
 * - Local-only admin routes under `/__` (stats, schedule triggers), registered by the modules that own them.
 * - Anything else answers 501 with an error that names the request, so an SDK call to a service
 *   with no local emulator fails loudly instead of reaching for AWS.
 */

export type AdminRoute = (req: IncomingMessage, params: Record<string, string>, body: Buffer) => Promise<{ status: number; body?: unknown }>;

interface Registered {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: AdminRoute;
}

export class ControlPlane {
  private readonly routes: Registered[] = [];
  private server?: LocalServer;
  private iam?: { iam: LocalIam; region: string };

  /** `api` is looked up per request: the control plane starts before the API it controls. */
  constructor(
    private readonly api: () => LocalApiGateway | undefined,
    private readonly account: string,
  ) {
    this.registerApiGateway();
  }

  /** Adds a route; `path` uses `{name}` placeholders, e.g. `/__schedules/{name}/trigger`. */
  route(method: string, path: string, handler: AdminRoute): void {
    const keys: string[] = [];
    const pattern = new RegExp(
      `^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{(\w+)\\?\}/g, (_m, k: string) => {
        keys.push(k);
        return '([^/]+)';
      })}/?$`,
    );
    this.routes.push({ method, pattern, keys, handler });
  }

  /** Checks API Gateway control calls against IAM: `apigateway:<METHOD>` on `arn:aws:apigateway:<region>::<path>`. */
  useIam(iam: LocalIam, region: string): void {
    this.iam = { iam, region };
  }

  async start(port = 0): Promise<LocalServer> {
    this.server = await listen((req, res) => this.handle(req, res), port);
    return this.server;
  }

  async stop(): Promise<void> {
    await this.server?.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    try {
      const body = await readBody(req, 10 * 1024 * 1024);
      // API Gateway's control API (REST APIs, API keys, usage plans): IAM resources are its paths. The
      // local admin routes (/__…) are the local cloud's own and answer no AWS client.
      if (this.iam && /^\/(restapis|apikeys|usageplans)(\/|$)/.test(url.pathname)) {
        const resource = `arn:aws:apigateway:${this.iam.region}::${url.pathname}`;
        const { refuse } = await this.iam.iam.check(req.headers, [{ action: `apigateway:${method}`, resource }]);
        if (refuse) {
          const type = refuse.unknownKey ? 'UnrecognizedClientException' : 'AccessDeniedException';
          sendJson(res, 403, { message: refuse.unknownKey ? INVALID_TOKEN_MESSAGE : refuse.message }, { 'x-amzn-RequestId': requestId, 'x-amzn-ErrorType': type });
          return;
        }
      }
      for (const r of this.routes) {
        if (r.method !== method) continue;
        const m = r.pattern.exec(url.pathname);
        if (!m) continue;
        const params = Object.fromEntries(r.keys.map((k, i) => [k, decodeURIComponent(m[i + 1]!)]));
        const out = await r.handler(req, params, body);
        if (out.body === undefined) {
          res.writeHead(out.status, { 'x-amzn-RequestId': requestId, 'Content-Length': '0' });
          res.end();
        } else sendJson(res, out.status, out.body, { 'x-amzn-RequestId': requestId });
        return;
      }
      const target = req.headers['x-amz-target'];
      const message = `The local cloud does not emulate ${method} ${url.pathname}${target ? ` (X-Amz-Target: ${String(target)})` : ''}. Add an emulator under local/ or point this client somewhere else.`;
      sendJson(res, 501, { __type: 'NotImplemented', message }, { 'x-amzn-RequestId': requestId, 'x-amzn-ErrorType': 'NotImplemented' });
    } catch (error) {
      const e = error as Error & { status?: number; type?: string };
      sendJson(res, e.status ?? 500, { __type: e.type ?? 'InternalFailure', message: e.message }, {
        'x-amzn-RequestId': requestId,
        'x-amzn-ErrorType': e.type ?? 'InternalFailure',
      });
    }
  }

  private registerApiGateway(): void {
    const notFound = (message: string) => Object.assign(new Error(message), { status: 404, type: 'NotFoundException' });
    const api = this.api;
    const checkApi = (id: string) => {
      const a = api();
      if (!a || a.model.id !== id) throw notFound(`Invalid API identifier specified ${this.account}:${id}`);
      return a;
    };
    const checkStage = (id: string, stage: string) => {
      const a = checkApi(id);
      if (a.model.stage !== stage) throw notFound(`Invalid stage identifier specified`);
      return a;
    };
    const restApi = (a: LocalApiGateway) => ({
      id: a.model.id,
      name: a.model.name,
      rootResourceId: a.model.root.id,
      binaryMediaTypes: a.model.binaryMediaTypes,
      endpointConfiguration: { types: ['REGIONAL'] },
    });
    const stage = (a: LocalApiGateway) => ({ stageName: a.model.stage, deploymentId: a.model.id.slice(0, 6), variables: a.model.stageVariables });

    this.route('DELETE', '/restapis/{restapi_id}/stages/{stage_name}/cache/authorizers', async (_req, p) => {
      checkStage(p.restapi_id!, p.stage_name!).flushAuthorizerCache();
      return { status: 202 };
    });
    this.route('DELETE', '/restapis/{restapi_id}/stages/{stage_name}/cache/data', async (_req, p) => {
      checkStage(p.restapi_id!, p.stage_name!);
      return { status: 202 };
    });
    // API keys and usage plans (CreateApiKey, CreateUsagePlanKey, …): apigateway-usage.ts serves them.
    const usage = () => {
      const u = api()?.usage;
      if (!u) throw Object.assign(new Error('The local API has no usage plans (the API is not running yet)'), { status: 404, type: 'NotFoundException' });
      return u;
    };
    for (const [method, path, handler] of usageRoutes(usage)) this.route(method, path, handler);
    this.route('GET', '/restapis', async () => ({ status: 200, body: { item: api() ? [restApi(api()!)] : [] } }));
    this.route('GET', '/restapis/{restapi_id}', async (_req, p) => ({ status: 200, body: restApi(checkApi(p.restapi_id!)) }));
    this.route('GET', '/restapis/{restapi_id}/stages', async (_req, p) => ({ status: 200, body: { item: [stage(checkApi(p.restapi_id!))] } }));
    this.route('GET', '/restapis/{restapi_id}/stages/{stage_name}', async (_req, p) => ({
      status: 200,
      body: stage(checkStage(p.restapi_id!, p.stage_name!)),
    }));
  }
}
