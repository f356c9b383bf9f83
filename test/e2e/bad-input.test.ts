import { beforeAll, describe, expect, it } from 'vitest';
import { call, newMerchant, orderBody } from './support';

let key: string;
beforeAll(async () => {
  ({ key } = await newMerchant());
});

const valid = orderBody();

describe('bad input on POST /v1/orders', () => {
  it.each([
    ['malformed JSON', { raw: '{"amount": 10', headers: { 'Content-Type': 'application/json' } }, 400, 'body_not_json', undefined],
    ['a JSON array', { raw: '[1,2]' }, 400, 'body_not_object', undefined],
    ['an unknown field', { body: { ...valid, amont: 5 } }, 400, 'parameter_unknown', 'amont'],
    ['a missing field', { body: { amount: 100, currency: 'USD' } }, 400, 'parameter_missing', 'merchant_order_no'],
    ['amount as a string', { body: { ...valid, amount: '2500' } }, 400, 'parameter_invalid', 'amount'],
    ['a fractional amount', { body: { ...valid, amount: 10.5 } }, 400, 'parameter_invalid', 'amount'],
    ['a negative amount', { body: { ...valid, amount: -1 } }, 400, 'parameter_invalid', 'amount'],
    ['an amount too large', { body: { ...valid, amount: 1e15 } }, 400, 'parameter_invalid', 'amount'],
    ['an unknown currency', { body: { ...valid, currency: 'XYZ' } }, 400, 'parameter_invalid', 'currency'],
    ['a bad merchant_order_no', { body: { ...valid, merchant_order_no: 'a/b' } }, 400, 'parameter_invalid', 'merchant_order_no'],
    ['expires_in too short', { body: { ...valid, expires_in: 30 } }, 400, 'parameter_invalid', 'expires_in'],
    ['expires_in too long', { body: { ...valid, expires_in: 16 * 86400 } }, 400, 'parameter_invalid', 'expires_in'],
    ['a plain-http notify_url', { body: { ...valid, notify_url: 'http://merchant.example/notify' } }, 400, 'parameter_invalid', 'notify_url'],
    ['a bad payer email', { body: { ...valid, payer: { email: 'nope' } } }, 400, 'parameter_invalid', 'payer.email'],
    ['a bad capture_method', { body: { ...valid, capture_method: 'sometimes' } }, 400, 'parameter_invalid', 'capture_method'],
    ['21 metadata keys', { body: { ...valid, metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])) } }, 400, 'parameter_invalid', 'metadata'],
    ['a body over 64 KB', { body: { ...valid, description: 'x'.repeat(70 * 1024) } }, 413, 'body_too_large', undefined],
  ] as const)('%s gets %i naming the parameter', async (_, request, status, code, param) => {
    const res = await call('POST', '/v1/orders', { key, ...(request as object) });
    expect(res.status).toBe(status);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code });
    expect(res.body.error.param).toBe(param);
    if (param) expect(res.body.error.message).toContain(param);
    expect(res.headers.get('request-id')).toBe(res.body.error.request_id);
  });

  it('writes nothing for a rejected request', async () => {
    const no = `REJECTED-${Date.now()}`;
    const res = await call('POST', '/v1/orders', { key, body: { ...valid, merchant_order_no: no, currency: 'XYZ' } });
    expect(res.status).toBe(400);
    expect((await call('POST', '/v1/orders', { key, body: { ...valid, merchant_order_no: no } })).status).toBe(201);
  });
});

describe('errors in the caller\'s language', () => {
  it('answers Accept-Language: zh-CN in Simplified Chinese with the same type, code and param, and English without it', async () => {
    // Prepare: one bad request, sent twice
    const body = { ...valid, amount: -1 };
    // Act
    const en = await call('POST', '/v1/orders', { key, body });
    const zh = await call('POST', '/v1/orders', { key, body, headers: { 'Accept-Language': 'fr;q=0.5, zh-CN;q=0.9' } });
    // Assess
    expect(en.status).toBe(400);
    expect(zh.status).toBe(400);
    const pick = ({ type, code, param }: { type: string; code: string; param: string }) => ({ type, code, param });
    expect(pick(zh.body.error)).toEqual(pick(en.body.error));
    expect(pick(en.body.error)).toEqual({ type: 'invalid_request_error', code: 'parameter_invalid', param: 'amount' });
    expect(en.body.error.message).toMatch(/^Invalid 'amount': got -1\./);
    expect(zh.body.error.message).toMatch(/^参数 'amount' 无效：收到 -1。/);
  });

  it('localizes an error raised before validation (not JSON) and a missing resource', async () => {
    const headers = { 'Accept-Language': 'zh', 'Content-Type': 'application/json' };
    const json = await call('POST', '/v1/orders', { key, raw: '{"amount": 10', headers });
    expect(json.body.error).toMatchObject({ type: 'invalid_request_error', code: 'body_not_json', message: expect.stringMatching(/^请求体不是有效的 JSON/) });
    const missing = await call('GET', '/v1/orders/ord_doesnotexist0', { key, headers });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'resource_missing', param: 'id', message: expect.stringContaining("'ord_doesnotexist0'") });
    expect(missing.body.error.message).toMatch(/^不存在的/);
  });
});

describe('bad input elsewhere', () => {
  it.each([
    ['/v1/orders?limit=0', 'limit'],
    ['/v1/orders?limit=101', 'limit'],
    ['/v1/orders?status=paid', 'status'],
    ['/v1/orders?created[gte]=yesterday', 'created[gte]'],
    ['/v1/orders?colour=red', 'colour'],
  ])('GET %s names %s', async (path, param) => {
    const res = await call('GET', path, { key });
    expect(res.status).toBe(400);
    expect(res.body.error.param).toBe(param);
  });

  it('answers an unknown route with 404 in the API error shape', async () => {
    const res = await call('GET', '/v1/nothing-here', { key });
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ code: 'route_not_found' });
  });
});
