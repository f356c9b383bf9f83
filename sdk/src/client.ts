import { HttpClient, type ClientOptions, type Query, type RequestOptions } from './http.js';
import { ListCall, type ListPage } from './pagination.js';
import type { paths } from './types.js';
import { Webhooks } from './webhooks.js';

// Request and response types come from the spec (src/types.ts, `npm run generate`), looked up by path and method,
// so a change of the spec shows up here as a type error rather than as a wrong guess at run time.
type Method = 'get' | 'post' | 'delete';
type Op<P extends keyof paths, M extends Method> = paths[P] extends { [K in M]: infer O } ? O : never;
type JsonOf<C> = C extends { content: { 'application/json': infer B } } ? B : never;
/** The 2xx body of an operation. */
export type ResponseOf<P extends keyof paths, M extends Method> =
  Op<P, M> extends { responses: infer R } ? JsonOf<R[Extract<keyof R, 200 | 201 | '200' | '201'>]> : never;
/** The JSON request body of an operation. */
export type BodyOf<P extends keyof paths, M extends Method> = Op<P, M> extends { requestBody?: infer B } ? JsonOf<NonNullable<B>> : never;
/** The query parameters of an operation; numbers are welcome where the wire takes digits (`limit: 10`). */
export type QueryOf<P extends keyof paths, M extends Method> = Op<P, M> extends { parameters: { query?: infer Q } } ? Loosen<NonNullable<Q>> : never;
type Loosen<Q> = { [K in keyof Q]: Q[K] extends string | undefined ? Q[K] | number : Q[K] };
type ItemOf<L> = L extends ListPage<infer T> ? T : L extends { data: (infer T)[] } ? T : never;
type Listed<P extends keyof paths> = ItemOf<ResponseOf<P, 'get'>> & { id: string };

const seg = (id: string) => {
  if (typeof id !== 'string' || id === '') throw new TypeError(`Payplane: an id is required, got ${JSON.stringify(id)}`);
  return encodeURIComponent(id);
};

export class Payplane {
  readonly http: HttpClient;
  readonly webhooks: Webhooks;

  constructor(options: ClientOptions) {
    this.http = new HttpClient(options);
    this.webhooks = new Webhooks(`${this.http.url}/v1/platform/public_keys`, options.fetch);
  }

  private get<P extends keyof paths>(path: string, query?: Query, options?: RequestOptions) {
    return this.http.request<ResponseOf<P, 'get'>>('GET', path, { query }, options);
  }
  private post<P extends keyof paths>(path: string, body: unknown, options?: RequestOptions) {
    return this.http.request<ResponseOf<P, 'post'>>('POST', path, { body }, options);
  }
  private list<P extends keyof paths>(path: string, query?: unknown, options?: RequestOptions) {
    return new ListCall<Listed<P>>(this.http, path, query as Query, options);
  }

  readonly orders = {
    create: (body: BodyOf<'/v1/orders', 'post'>, options?: RequestOptions) => this.post<'/v1/orders'>('/v1/orders', body, options),
    retrieve: (id: string, options?: RequestOptions) => this.get<'/v1/orders/{id}'>(`/v1/orders/${seg(id)}`, undefined, options),
    list: (query?: QueryOf<'/v1/orders', 'get'>, options?: RequestOptions) => this.list<'/v1/orders'>('/v1/orders', query, options),
    confirm: (id: string, body: BodyOf<'/v1/orders/{id}/confirm', 'post'>, options?: RequestOptions) =>
      this.post<'/v1/orders/{id}/confirm'>(`/v1/orders/${seg(id)}/confirm`, body, options),
    capture: (id: string, body: BodyOf<'/v1/orders/{id}/capture', 'post'> = {}, options?: RequestOptions) =>
      this.post<'/v1/orders/{id}/capture'>(`/v1/orders/${seg(id)}/capture`, body, options),
    close: (id: string, options?: RequestOptions) => this.post<'/v1/orders/{id}/close'>(`/v1/orders/${seg(id)}/close`, undefined, options),
    listRefunds: (id: string, query?: QueryOf<'/v1/orders/{id}/refunds', 'get'>, options?: RequestOptions) =>
      this.list<'/v1/orders/{id}/refunds'>(`/v1/orders/${seg(id)}/refunds`, query, options),
  };

  readonly refunds = {
    create: (body: BodyOf<'/v1/refunds', 'post'>, options?: RequestOptions) => this.post<'/v1/refunds'>('/v1/refunds', body, options),
    retrieve: (id: string, options?: RequestOptions) => this.get<'/v1/refunds/{id}'>(`/v1/refunds/${seg(id)}`, undefined, options),
  };

  readonly balance = {
    retrieve: (options?: RequestOptions) => this.get<'/v1/balance'>('/v1/balance', undefined, options),
  };

  readonly events = {
    list: (query?: QueryOf<'/v1/events', 'get'>, options?: RequestOptions) => this.list<'/v1/events'>('/v1/events', query, options),
    retrieve: (id: string, options?: RequestOptions) => this.get<'/v1/events/{id}'>(`/v1/events/${seg(id)}`, undefined, options),
  };

  readonly webhookEndpoints = {
    create: (body: BodyOf<'/v1/webhook_endpoints', 'post'>, options?: RequestOptions) =>
      this.post<'/v1/webhook_endpoints'>('/v1/webhook_endpoints', body, options),
    list: (query?: QueryOf<'/v1/webhook_endpoints', 'get'>, options?: RequestOptions) =>
      this.list<'/v1/webhook_endpoints'>('/v1/webhook_endpoints', query, options),
  };

  /** Any route, for what has no method yet: `request('GET', '/v1/settlements', { query: { limit: 5 } })`. */
  request<T = unknown>(method: 'GET' | 'POST' | 'DELETE', path: string, init?: { query?: Query; body?: unknown }, options?: RequestOptions): Promise<T> {
    return this.http.request<T>(method, path, init, options);
  }
}
