import { ConnectionError, errorFromResponse, type PayplaneError } from './errors.js';

export interface ClientOptions {
  /** A secret (`sk_test_…`) or restricted (`rk_test_…`) key. */
  apiKey: string;
  /** The stage's API URL with its stage path, e.g. `https://…execute-api…/prod`; `npm start` prints the local one. */
  baseUrl: string;
  /** Retries after the first attempt, on network errors, timeouts, 409 idempotency_key_in_use, 429 and 5xx. @default 2 */
  maxNetworkRetries?: number;
  /** Milliseconds one attempt may take before it is aborted (and retried). @default 30000 */
  timeout?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  /** Sent on POST; generated when absent, and the same on every retry of the call. */
  idempotencyKey?: string;
  /** Aborts the call, its retries included. */
  signal?: AbortSignal;
  timeout?: number;
  maxNetworkRetries?: number;
  /** Overrides the client's key for this call. */
  apiKey?: string;
  headers?: Record<string, string>;
}

export type Query = Record<string, string | number | boolean | undefined | null | Record<string, string | number | undefined>>;

const INITIAL_DELAY_MS = 500;
const MAX_DELAY_MS = 8_000;
/** A server asking for longer than this is not worth blocking a caller on: the error is raised instead. */
const MAX_RETRY_AFTER_MS = 60_000;

/** `created[gte]`-style keys for nested objects, as the list routes take them. */
export function queryString(query: Query | undefined): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null) continue;
    if (typeof value === 'object') {
      for (const [sub, v] of Object.entries(value)) if (v !== undefined) params.append(`${key}[${sub}]`, String(v));
    } else params.append(key, String(value));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** Exponential backoff with jitter (half fixed, half random, so retries of many clients spread out). */
export function backoff(retry: number): number {
  const ceiling = Math.min(MAX_DELAY_MS, INITIAL_DELAY_MS * 2 ** retry);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** Retry-After as seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

function retryable(error: PayplaneError): boolean {
  const status = error.statusCode;
  return status === 429 || (status !== undefined && status >= 500) || (status === 409 && error.code === 'idempotency_key_in_use');
}

/** The transport every resource uses: auth, JSON, idempotency keys, retries, timeouts, typed errors. */
export class HttpClient {
  private readonly baseUrl: string;

  constructor(private readonly options: ClientOptions) {
    if (!options.apiKey) throw new TypeError('Payplane: apiKey is required (sk_test_… or rk_test_…, printed by `npm start` locally).');
    if (!/^https?:\/\//.test(options.baseUrl ?? '')) {
      throw new TypeError(`Payplane: baseUrl ${JSON.stringify(options.baseUrl)} is not an http(s) URL; pass the stage's API URL, e.g. http://127.0.0.1:3000/dev.`);
    }
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
  }

  get url(): string {
    return this.baseUrl;
  }

  async request<T>(method: string, path: string, init: { query?: Query; body?: unknown } = {}, options: RequestOptions = {}): Promise<T> {
    const fetchImpl = this.options.fetch ?? globalThis.fetch;
    const maxRetries = options.maxNetworkRetries ?? this.options.maxNetworkRetries ?? 2;
    const timeout = options.timeout ?? this.options.timeout ?? 30_000;
    const idempotencyKey = method === 'POST' ? (options.idempotencyKey ?? globalThis.crypto.randomUUID()) : undefined;
    const headers: Record<string, string> = {
      Accept: 'application/json',
      Authorization: `Bearer ${options.apiKey ?? this.options.apiKey}`,
      ...options.headers,
      ...(idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {}),
    };
    let body: string | undefined;
    if (init.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(init.body);
    }
    const url = `${this.baseUrl}${path}${queryString(init.query)}`;

    for (let attempt = 0; ; attempt++) {
      const last = attempt >= maxRetries;
      const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(timeout)]) : AbortSignal.timeout(timeout);
      let error: PayplaneError;
      let wait: number | undefined;
      try {
        const res = await fetchImpl(url, { method, headers, body, signal });
        const text = await res.text();
        const responseHeaders = Object.fromEntries(res.headers);
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          // Not JSON: a proxy's page, kept as text for the error.
        }
        if (res.ok) return parsed as T;
        error = errorFromResponse(res.status, parsed, responseHeaders, idempotencyKey);
        if (!retryable(error)) throw error;
        wait = retryAfterMs(responseHeaders['retry-after']);
        if (wait !== undefined && wait > MAX_RETRY_AFTER_MS) throw error;
      } catch (caught) {
        if (caught instanceof Error && caught.name !== 'AbortError' && caught.name !== 'TimeoutError' && !(caught instanceof TypeError)) throw caught;
        // The caller's own abort ends the call; a timeout or a network failure is retried.
        if (options.signal?.aborted) throw options.signal.reason;
        const timedOut = caught instanceof Error && caught.name === 'TimeoutError';
        error = new ConnectionError({
          message: timedOut ? `${method} ${path} timed out after ${timeout} ms` : `${method} ${path} failed: ${(caught as Error).message}`,
          type: 'connection_error',
          idempotencyKey,
          cause: caught,
        });
      }
      if (last) throw error;
      await sleep(Math.max(wait ?? 0, backoff(attempt)), options.signal);
    }
  }
}
