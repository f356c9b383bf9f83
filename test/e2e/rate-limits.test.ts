import { describe, expect, it } from 'vitest';
import { call, newMerchant, payplane, type Response } from './support';

/**
 * Rate limits as the template declares them (lib/stage-config.ts → usage plan, stage MethodSettings) and the
 * operator sets them (payplane merchants limits set → its own usage plan, through the control API). Token
 * buckets: a burst is admitted at once, then `rate` per second. Counts, never durations: the only clock in
 * these assertions bounds how many tokens can have been refilled while the test ran.
 */

const count = (responses: Response[], status: number) => responses.filter((r) => r.status === status).length;

function expectRateLimited(response: Response) {
  expect(response.status).toBe(429);
  expect(response.headers.get('retry-after')).toBe('1');
  expect(response.body).toEqual({
    error: { type: 'rate_limit_error', code: 'rate_limited', message: expect.stringContaining('Retry after 1 s'), request_id: expect.any(String) },
  });
}

describe('per-merchant rate limits', () => {
  it("429 comes only past the merchant's burst, in our error shape; another merchant is unaffected", async () => {
    // Prepare: A gets a small override (rate 1/s, burst 5); B keeps the stage default (burst 200).
    const a = await newMerchant('Rate-limited merchant');
    const b = await newMerchant('Unaffected merchant');
    const set = await payplane('merchants', 'limits', 'set', '--merchant', a.id, '--rate', '1', '--burst', '5');
    expect(set.code, set.stderr).toBe(0);
    const started = performance.now();
    // One call primes the authorizer cache (and spends one token), so the burst below is decided at once.
    expect((await call('GET', '/v1/balance', { key: a.key })).status).toBe(200);

    // Act: 12 at once from A, 12 at once from B
    const [fromA, fromB] = await Promise.all([
      Promise.all(Array.from({ length: 12 }, () => call('GET', '/v1/balance', { key: a.key }))),
      Promise.all(Array.from({ length: 12 }, () => call('GET', '/v1/balance', { key: b.key }))),
    ]);
    const refilled = Math.ceil((performance.now() - started) / 1000); // rate 1/s: at most this many more tokens

    // Assess: A got the 4 tokens left of its burst (plus what refilled), every other call a 429
    expect(count(fromA, 200)).toBeGreaterThanOrEqual(4);
    expect(count(fromA, 200)).toBeLessThanOrEqual(4 + refilled);
    expect(count(fromA, 200) + count(fromA, 429)).toBe(12);
    for (const r of fromA.filter((r) => r.status === 429)) expectRateLimited(r);
    expect(fromB.map((r) => r.status)).toEqual(Array(12).fill(200));
  });

  it('an override takes effect on the next request: raising it lets the merchant through again', async () => {
    // Prepare: exhaust a burst of 1
    const m = await newMerchant('Raised merchant');
    await payplane('merchants', 'limits', 'set', '--merchant', m.id, '--rate', '1', '--burst', '1');
    const burst = await Promise.all(Array.from({ length: 4 }, () => call('GET', '/v1/balance', { key: m.key })));
    expect(count(burst, 429)).toBeGreaterThan(0);
    // Act
    expect((await payplane('merchants', 'limits', 'set', '--merchant', m.id, '--rate', '100', '--burst', '200')).code).toBe(0);
    const after = await Promise.all(Array.from({ length: 4 }, () => call('GET', '/v1/balance', { key: m.key })));
    // Assess
    expect(after.map((r) => r.status)).toEqual([200, 200, 200, 200]);
  });
});

describe('public routes have their own limits', () => {
  it('a flood of /checkout/* is throttled by its own bucket and never starves a merchant', async () => {
    // Prepare
    const merchant = await newMerchant('Merchant during a checkout flood');
    expect((await call('GET', '/v1/balance', { key: merchant.key })).status).toBe(200);
    const page = '/checkout/ord_flood0000000000000000';
    // Warm environments answer the admitted part of the flood fast, so the rest arrives before much refills.
    await Promise.all(Array.from({ length: 4 }, () => call('GET', page)));
    // Act: far more than the checkout method's burst (dev: 100, then 50/s) at once, and the merchant's calls meanwhile
    const flood = Promise.all(Array.from({ length: 250 }, () => call('GET', page)));
    const duringFlood = await Promise.all(Array.from({ length: 10 }, () => call('GET', '/v1/balance', { key: merchant.key })));
    const flooded = await flood;
    // Assess: the flood met 429s past its burst; the merchant met none
    expect(count(flooded, 429)).toBeGreaterThan(0);
    for (const r of flooded.filter((r) => r.status === 429)) expectRateLimited(r);
    expect(flooded.every((r) => r.status === 429 || r.status < 500)).toBe(true);
    expect(duringFlood.map((r) => r.status)).toEqual(Array(10).fill(200));
  });
});
