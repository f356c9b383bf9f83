import { connect } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { cloud, newMerchant } from './support';

/**
 * Issue 7 finding 9 against the real functions: Object-prototype names in the query and in headers, on every
 * route the stage serves, never give a 5xx and never stop the local cloud.
 */
const NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];
const ROUTES: [string, string][] = [
  ['POST', '/v1/orders'],
  ['GET', '/v1/orders'],
  ['GET', '/v1/orders/ord_000000000000000000000000'],
  ['POST', '/v1/orders/ord_000000000000000000000000/close'],
  ['POST', '/v1/orders/ord_000000000000000000000000/confirm'],
  ['POST', '/v1/orders/ord_000000000000000000000000/capture'],
  ['GET', '/v1/orders/ord_000000000000000000000000/refunds'],
  ['POST', '/v1/refunds'],
  ['GET', '/v1/refunds/re_000000000000000000000000'],
  ['GET', '/v1/balance'],
  ['POST', '/channels/sandbox/notify'],
  ['GET', '/checkout/ord_000000000000000000000000'],
  ['POST', '/checkout/ord_000000000000000000000000'],
  ['GET', '/checkout/ord_000000000000000000000000/3ds'],
  ['POST', '/checkout/ord_000000000000000000000000/3ds'],
  ['GET', '/x'],
];

/** Raw HTTP/1.1: fetch() drops a header named `__proto__`. Answers the status code. */
function raw(method: string, path: string, headers: string[], body = ''): Promise<number> {
  const { hostname, port, pathname } = new URL(cloud().url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let answer = '';
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)));
    socket.on('error', reject);
    socket.write(
      [`${method} ${pathname}${path} HTTP/1.1`, 'Host: 127.0.0.1', ...headers, `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close', '', body].join('\r\n'),
    );
  });
}

describe('Object-prototype names on every route (finding 9)', () => {
  let key: string;
  beforeAll(async () => {
    key = (await newMerchant('Hostile names')).key;
  });

  it.each(ROUTES)('%s %s: no 5xx, and the cloud keeps serving', async (method, path) => {
    const query = NAMES.map((n, i) => `${n}=${i}`).join('&');
    const headers = [`Authorization: Bearer ${key}`, ...NAMES.map((n, i) => `${n}: v${i}`)];
    const body = method === 'POST' ? (path.startsWith('/checkout') ? 'constructor=1&__proto__=2' : '{"constructor":"x"}') : '';
    const contentType = path.startsWith('/checkout') || path.startsWith('/channels') ? 'application/x-www-form-urlencoded' : 'application/json';
    const status = await raw(method, `${path}?${query}`, method === 'POST' ? [...headers, `Content-Type: ${contentType}`] : headers, body);
    expect(status).toBeGreaterThanOrEqual(200);
    expect(status).toBeLessThan(500);
    expect(await raw('GET', '/v1/balance', [`Authorization: Bearer ${key}`])).toBe(200);
  });
});
