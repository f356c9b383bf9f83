import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, type LocalServer } from '../../local/http';
import { card, CARDS, waitForOrder } from './payments-support';
import { cloud, newMerchant, orderBody } from './support';

/**
 * Issue 7 finding 10: public URLs come from the stage's configuration (PUBLIC_BASE_URL, set by the stack),
 * never from the Host header a caller sends. A forged Host once poisoned checkout_url and made the sandbox
 * notifier POST the signed callback to the forged host (an SSRF).
 */

/** node:http, because fetch() cannot send a Host of its choosing. */
function withHost(host: string, method: string, path: string, key: string, body?: unknown): Promise<{ status: number; body: any }> {
  const target = new URL(`${cloud().url}${path}`);
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method,
        headers: {
          Host: host,
          Authorization: `Bearer ${key}`,
          'Idempotency-Key': randomUUID(),
          ...(text ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) } : {}),
        },
      },
      (res) => {
        let data = '';
        res.on('data', (d) => (data += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(data) }));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

describe('a forged Host header builds no public URL', () => {
  let merchant: { id: string; key: string };
  /** Stands in for the attacker's host: it must never hear from us. */
  let attacker: LocalServer;
  const heard: string[] = [];
  beforeAll(async () => {
    merchant = await newMerchant('Forged Host');
    attacker = await listen((req, res) => {
      heard.push(`${req.method} ${req.url}`);
      res.end('success');
    });
  });
  afterAll(async () => {
    await attacker?.close();
  });

  it('leaves checkout_url on the stage’s own address', async () => {
    const created = await withHost('evil.example', 'POST', '/v1/orders', merchant.key, orderBody());
    expect(created.status).toBe(201);
    expect(created.body.checkout_url).toBe(`${cloud().url}/checkout/${created.body.id}`);
    const read = await withHost('evil.example', 'GET', `/v1/orders/${created.body.id}`, merchant.key);
    expect(read.body.checkout_url).toBe(created.body.checkout_url);
  });

  it('sends the channel’s callback to the stage, not to the forged host', async () => {
    const attackerHost = new URL(attacker.url).host;
    const created = await withHost(attackerHost, 'POST', '/v1/orders', merchant.key, orderBody());
    const confirmed = await withHost(attackerHost, 'POST', `/v1/orders/${created.body.id}/confirm`, merchant.key, card(CARDS.asyncSuccess));
    expect(confirmed.status).toBe(200);
    expect(confirmed.body.status).toBe('processing');
    // The result arrives only if the notifier POSTed to our notify route.
    const paid = await waitForOrder(merchant.key, created.body.id, (o) => o.status !== 'processing');
    expect(paid.status).toBe('succeeded');
    expect(heard).toEqual([]);
  });
});

describe('callback URLs into a private network (finding 15b)', () => {
  it('refuses notify_url and return_url to the metadata service or a private address, even in the local cloud', async () => {
    const { key } = await newMerchant('Private callbacks');
    for (const [field, url] of <[string, string][]>[
      ['notify_url', 'https://169.254.169.254/latest/meta-data/'],
      ['return_url', 'https://0xa9fea9fe/'],
      ['notify_url', 'https://10.0.0.1/notify'],
      ['return_url', 'https://[::ffff:192.168.0.1]/'],
    ]) {
      const res = await withHost('127.0.0.1', 'POST', '/v1/orders', key, orderBody({ [field]: url }));
      expect(res.status, url).toBe(400);
      expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code: 'parameter_invalid', param: field });
      expect(res.body.error.message).toContain(url);
      expect(res.body.error.message).toMatch(/is a (link-local|private) address/);
    }
  });

  it('accepts loopback callbacks in the local cloud, whose own base URL is on loopback', async () => {
    const { key } = await newMerchant('Loopback callbacks');
    const res = await withHost('127.0.0.1', 'POST', '/v1/orders', key, orderBody({ notify_url: 'http://127.0.0.1:8080/n', return_url: 'http://localhost:8080/done' }));
    expect(res.status).toBe(201);
  });
});
