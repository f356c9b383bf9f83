import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { InvalidRequestError } from '../functions/commons/errors';
import { OPERATOR_ROUTES, operatorPath, type OperatorCommand } from '../functions/operator/routes';

/**
 * The CLI's write commands as calls to the operator API (`/operator/…`, AWS_IAM): SigV4-signed (service
 * execute-api) with the operator's own credentials, so API Gateway, not the CLI, establishes who the operator is
 * and the platform records that principal. Reads (settlements, fx list) still read the table directly.
 */
export interface OperatorEndpoint {
  /** The stage's invoke URL, stage included: http://127.0.0.1:3000/dev, https://abc.execute-api.eu-west-1.amazonaws.com/dev/. */
  apiUrl: string;
  region: string;
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
}

/** A refusal of the operator API: its status, and our error body's code (or API Gateway's, from its gateway responses). */
export class OperatorApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'OperatorApiError';
  }
}

/** Calls one operator route and returns its JSON answer; a 400 comes back as InvalidRequestError (exit 2). */
export async function operatorCall<T>(endpoint: OperatorEndpoint, command: OperatorCommand, options: { id?: string; body?: Record<string, unknown> } = {}): Promise<T> {
  const { method } = OPERATOR_ROUTES[command];
  const url = new URL(endpoint.apiUrl.replace(/\/+$/, '') + operatorPath(command, options.id));
  const body = JSON.stringify(options.body ?? {});
  const signer = new SignatureV4({ credentials: endpoint.credentials, region: endpoint.region, service: 'execute-api', sha256: Hash.bind(null, 'sha256') });
  const signed = await signer.sign({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: url.pathname,
    query: {},
    headers: { host: url.host, 'content-type': 'application/json' },
    body,
  });
  const answer = await send(url, method, signed.headers as Record<string, string>, body);
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.text);
  } catch {
    parsed = undefined;
  }
  if (answer.status >= 200 && answer.status < 300 && parsed !== undefined) return parsed as T;
  throw refusal(command, answer.status, parsed, answer.text);
}

function refusal(command: OperatorCommand, status: number, parsed: unknown, text: string): Error {
  const error = (parsed as { error?: { type?: string; code?: string; message?: string; param?: string }; message?: string } | undefined)?.error;
  const message = error?.message ?? (parsed as { message?: string } | undefined)?.message ?? (text.slice(0, 200) || `HTTP ${status}`);
  if (status === 400 && error?.type === 'invalid_request_error' && error.code) {
    return new InvalidRequestError(error.code, message, { param: error.param });
  }
  const route = `${OPERATOR_ROUTES[command].method} ${OPERATOR_ROUTES[command].resource}`;
  if (status === 403) {
    return new OperatorApiError(
      status,
      error?.code,
      `The operator API refused ${route} (403 ${error?.code ?? ''}): ${message} Your IAM identity needs execute-api:Invoke on the stage's /operator/* routes (docs/operator-policy.json).`,
    );
  }
  if (status === 404 && error?.code === 'route_not_found') {
    return new OperatorApiError(status, error.code, `The API has no operator route ${route}, or the call was not signed: deploy the current version of the stack (npx cdk deploy), or restart the local cloud (npm start).`);
  }
  return new OperatorApiError(status, error?.code, message);
}

function send(url: URL, method: string, headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
