import { randomUUID } from 'node:crypto';
import { InvalidRequestError } from '../functions/commons/errors';
import { isConnectionFailure } from './target';

/**
 * The merchant commands (listen, trigger, events, orders, refunds) as a merchant's integration calls the API:
 * `/v1/…` over HTTPS with the merchant's key and nothing else, so they work against a deployed stage without AWS
 * credentials. (Independent of the SDK in sdk/: the CLI must not wait on it.)
 */
export interface MerchantApi {
  /** The stage's base URL, stage included: http://127.0.0.1:3000/dev */
  url: string;
  key: string;
  /** For messages: "local cloud (http://…) as the demo merchant". */
  label: string;
}

/** A refusal of the API: our error object, with the Request-Id to quote to support. */
export class MerchantApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string | undefined,
    readonly code: string | undefined,
    message: string,
    readonly requestId: string | undefined,
    readonly body: unknown,
  ) {
    super(message);
    this.name = 'MerchantApiError';
  }
}

export interface Answer<T> {
  body: T;
  /** The server's clock (the Date header): listen's "now", whatever the laptop's clock says. */
  date: Date | undefined;
}

export async function apiCall<T>(
  api: MerchantApi,
  method: 'GET' | 'POST',
  path: string,
  options: { query?: Record<string, string | number | undefined>; body?: unknown; signal?: AbortSignal } = {},
): Promise<Answer<T>> {
  const url = new URL(api.url.replace(/\/+$/, '') + path);
  for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
  const headers: Record<string, string> = { Authorization: `Bearer ${api.key}`, 'User-Agent': 'payplane-cli' };
  // One key per command run: a retry of this same call (none today) would be answered, not repeated.
  if (method === 'POST') headers['Idempotency-Key'] = randomUUID();
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body), signal: options.signal });
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error;
    if (isConnectionFailure(error)) {
      throw new Error(`Cannot reach the API at ${api.url} (${api.label}). Start the local cloud with \`npm start\`, or check --api-url.`, { cause: error });
    }
    throw error;
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const date = res.headers.get('date') ? new Date(res.headers.get('date')!) : undefined;
  if (res.ok && parsed !== undefined) return { body: parsed as T, date };
  const error = (parsed as { error?: { type?: string; code?: string; message?: string; param?: string } } | undefined)?.error;
  const requestId = res.headers.get('request-id') ?? undefined;
  const message = error?.message ?? (parsed as { message?: string } | undefined)?.message ?? (text.slice(0, 200) || `HTTP ${res.status}`);
  const route = `${method} ${url.pathname}`;
  if (res.status === 400 && error?.type === 'invalid_request_error' && error.code) {
    throw new InvalidRequestError(error.code, message, { param: error.param });
  }
  if (res.status === 401) {
    throw new MerchantApiError(401, error?.type, error?.code, `The API refused the key for ${route} (401): ${message} Pass the merchant's secret key with --api-key sk_test_… (or PAYPLANE_API_KEY for a stage).`, requestId, parsed);
  }
  if (res.status === 403) {
    throw new MerchantApiError(403, error?.type, error?.code, `The key may not call ${route} (403): ${message} Use a secret key, or a restricted key with that scope (payplane keys create).`, requestId, parsed);
  }
  throw new MerchantApiError(res.status, error?.type, error?.code, `${route} failed (${res.status}${error?.code ? ` ${error.code}` : ''}): ${message}${requestId ? ` (Request-Id ${requestId})` : ''}`, requestId, parsed);
}

/** Every page of a newest-first list route, newest first (`starting_after` the last id of each page). */
export async function listAll<T extends { id: string }>(
  api: MerchantApi,
  path: string,
  query: Record<string, string | number | undefined>,
  signal?: AbortSignal,
): Promise<{ data: T[]; date: Date | undefined }> {
  const data: T[] = [];
  let date: Date | undefined;
  for (let after: string | undefined; ; ) {
    const page = await apiCall<{ data: T[]; has_more: boolean }>(api, 'GET', path, { query: { ...query, limit: 100, starting_after: after }, signal });
    date ??= page.date;
    data.push(...page.body.data);
    if (!page.body.has_more || page.body.data.length === 0) return { data, date };
    after = page.body.data.at(-1)!.id;
  }
}
