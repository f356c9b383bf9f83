import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { operatorHandler, type OperatorDeps } from '../../functions/operator/operations';
import { OPERATOR_ROUTES, type OperatorFunctionId } from '../../functions/operator/routes';
import { verifySigV4 } from '../../local/iam';

/**
 * A stand-in for API Gateway in front of the operator handlers, for the CLI's integration tests (no local cloud):
 * real HTTP, the CLI's real SigV4 signature checked (local/iam.ts verifySigV4), the route matched from
 * functions/operator/routes.ts, and the handler run in-process on `deps` with the principal in
 * requestContext.identity, as an AWS_IAM method hands it. The local cloud's own AWS_IAM (IAM policies, the
 * template's routes) is the e2e tier's (test/e2e/operator-api.test.ts).
 */
export interface OperatorApiStandIn {
  /** The stage's invoke URL, for local.json's apiUrl. */
  url: string;
  /** What each call was answered: `POST /operator/merchants 201`. */
  calls: string[];
  stop(): Promise<void>;
}

export const STAND_IN_STAGE = 'local';

export async function startOperatorApi(options: {
  deps: OperatorDeps;
  /** Access key id → secret the signatures are checked with. */
  credentials: Record<string, string>;
  /** The principal the handlers see. */
  principal: string;
}): Promise<OperatorApiStandIn> {
  const handlers = new Map<OperatorFunctionId, ReturnType<typeof operatorHandler>>();
  const handlerOf = (fn: OperatorFunctionId) => handlers.get(fn) ?? handlers.set(fn, operatorHandler(fn, () => options.deps)).get(fn)!;
  const calls: string[] = [];
  const server = createServer((req, res) => {
    void answer(req).then(({ statusCode, headers, body }) => {
      calls.push(`${req.method} ${req.url} ${statusCode}`);
      res.writeHead(statusCode, headers as Record<string, string>);
      res.end(body);
    });
  });
  async function answer(req: IncomingMessage): Promise<APIGatewayProxyResult> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://localhost');
    const signed = await verifySigV4({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body }, 'execute-api', (key) => options.credentials[key]);
    if (!signed.ok) return { statusCode: 403, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ message: signed.message }) };
    const path = url.pathname.slice(`/${STAND_IN_STAGE}`.length);
    for (const route of Object.values(OPERATOR_ROUTES)) {
      const match = new RegExp(`^${route.resource.replace('{id}', '([^/]+)')}$`).exec(path);
      if (!match || route.method !== req.method) continue;
      const event = {
        resource: route.resource,
        path,
        httpMethod: route.method,
        headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
        pathParameters: match[1] === undefined ? null : { id: decodeURIComponent(match[1]) },
        body: body.toString('utf8'),
        isBase64Encoded: false,
        requestContext: { requestId: randomUUID(), identity: { userArn: options.principal, accessKey: signed.accessKeyId } },
      } as unknown as APIGatewayProxyEvent;
      const context = { awsRequestId: randomUUID(), functionName: route.fn, getRemainingTimeInMillis: () => 10_000 } as unknown as Context;
      return (await handlerOf(route.fn)(event, context)) as APIGatewayProxyResult;
    }
    return { statusCode: 404, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ error: { type: 'invalid_request_error', code: 'route_not_found', message: 'Missing Authentication Token' } }) };
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/${STAND_IN_STAGE}`,
    calls,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
