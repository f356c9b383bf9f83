import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { addressKind } from '../commons/addresses';

/**
 * The one way the platform POSTs to a URL a merchant chose (webhook endpoints, an order's notify_url).
 *
 * SSRF: the host is resolved once here, every address it resolves to is checked (functions/commons/addresses.ts:
 * loopback, private, CGNAT, link-local incl. 169.254.169.254, multicast, reserved, IPv6 ULA / link-local /
 * loopback / v4-mapped / NAT64 / 6to4 / Teredo), and the socket connects to the address that was checked
 * (a `lookup` that answers it), so a name that re-resolves to 127.0.0.1:9001 (the Lambda Runtime API) between
 * the check and the connect (DNS rebinding) gets nowhere. TLS still verifies the certificate against the URL's
 * host name (SNI and Host are the URL's). https only, except where `allowLoopback` (the local cloud's
 * PAYPLANE_LOCAL_ALLOW_LOOPBACK_WEBHOOKS) lets http://localhost and http://127.0.0.1 through.
 *
 * A 10 s budget covers connect, TLS, request and response head; redirects are never followed (a 3xx is a
 * failed attempt); the response body is read to at most 4 KiB and dropped.
 */
export const TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 4096;

export interface PostOptions {
  allowLoopback: boolean;
  /** Name resolution (tests substitute one that answers a chosen address). @default node:dns lookup, all addresses */
  resolve?: (hostname: string) => Promise<LookupAddress[]>;
  timeoutMs?: number;
}

export interface PostResult {
  statusCode: number | null;
  latencyMs: number;
  /** Why the attempt failed (also for a non-2xx answer); null on a 2xx. Safe to show the merchant. */
  error: string | null;
  retryAfter?: string;
  /** True when the URL was refused before any connection (never retried into success). */
  refused?: boolean;
}

export class RefusedUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefusedUrlError';
  }
}

const systemResolve = (hostname: string) =>
  new Promise<LookupAddress[]>((resolve, reject) => dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))));

/** Resolves and checks; returns the address to connect to, or throws RefusedUrlError naming why. */
export async function checkedAddress(url: URL, options: PostOptions): Promise<LookupAddress> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopbackHost = host === 'localhost' || host === '127.0.0.1';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && options.allowLoopback && loopbackHost)) {
    throw new RefusedUrlError(`${url.protocol}// is not allowed: webhook URLs must use https://`);
  }
  if (url.username || url.password) throw new RefusedUrlError('URLs with credentials (user:password@) are not called');
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await (options.resolve ?? systemResolve)(host);
  if (addresses.length === 0) throw new RefusedUrlError(`${host} did not resolve to any address`);
  for (const a of addresses) {
    const kind = addressKind(a.address);
    const localLoopback = kind === 'loopback' && options.allowLoopback && loopbackHost;
    // Every address must be public: connecting to "the first public one" would leave the choice to the resolver.
    if (kind && !localLoopback) {
      throw new RefusedUrlError(`${host === a.address ? host : `${host} resolves to ${a.address}, which`} is a ${kind} address; the platform never calls one`);
    }
  }
  return addresses[0]!;
}

export async function postWebhook(target: string, headers: Record<string, string>, body: string, options: PostOptions): Promise<PostResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let url: URL;
  let address: LookupAddress;
  try {
    url = new URL(target);
    address = await checkedAddress(url, options);
  } catch (error) {
    const message = error instanceof RefusedUrlError ? error.message : `the URL could not be used: ${(error as Error).message}`;
    return { statusCode: null, latencyMs: elapsed(), error: `refused: ${message}`, refused: error instanceof RefusedUrlError };
  }
  // The socket connects where the check said, whatever the name resolves to now.
  const pinned: LookupFunction = (_hostname, opts, callback) => {
    if ((opts as { all?: boolean }).all) (callback as (e: null, a: LookupAddress[]) => void)(null, [address]);
    else callback(null, address.address, address.family);
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<PostResult>((resolve) => {
    let settled = false;
    const finish = (result: Omit<PostResult, 'latencyMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ ...result, latencyMs: elapsed() });
    };
    const req = send(
      url,
      {
        method: 'POST',
        lookup: pinned,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': 'Payplane-Webhooks/1.0' },
        // No connection reuse: each attempt resolves and checks afresh.
        agent: false,
      },
      (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) done();
        });
        const done = () =>
          finish({
            statusCode: status,
            error: status >= 200 && status < 300 ? null : status >= 300 && status < 400 ? `answered ${status} (redirects are not followed)` : `answered ${status}`,
            retryAfter: typeof res.headers['retry-after'] === 'string' ? res.headers['retry-after'] : undefined,
          });
        res.on('end', done);
        res.on('error', done);
      },
    );
    const timer = setTimeout(() => finish({ statusCode: null, error: `timed out after ${(options.timeoutMs ?? TIMEOUT_MS) / 1000} s` }), options.timeoutMs ?? TIMEOUT_MS);
    req.on('error', (error: NodeJS.ErrnoException) => finish({ statusCode: null, error: `connection failed: ${error.code ?? error.message}` }));
    req.end(body);
  });
}
