import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../functions/commons/errors';
import { parseInput } from '../../functions/http/validation';
import { createOrderSchema, listOrdersSchema } from '../../functions/orders/schemas';

const valid = { merchant_order_no: 'A-1', amount: 1000, currency: 'USD' };

function rejection(body: unknown, schema = createOrderSchema(false)): InvalidRequestError {
  try {
    parseInput(schema, body);
  } catch (error) {
    if (error instanceof InvalidRequestError) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(body)} to be rejected`);
}

describe('create order validation', () => {
  it('applies the defaults', () => {
    const input = parseInput(createOrderSchema(false), valid);
    expect(input).toMatchObject({ expires_in: 1800, capture_method: 'automatic', metadata: {}, currency: 'USD' });
  });

  it('normalises the currency code to upper case', () => {
    expect(parseInput(createOrderSchema(false), { ...valid, currency: 'jpy' }).currency).toBe('JPY');
  });

  it.each([
    [{ ...valid, amount: 10.5 }, 'amount', '10.5', 'integer'],
    [{ ...valid, amount: '1000' }, 'amount', '"1000"', 'integer'],
    [{ ...valid, amount: 0 }, 'amount', '0', 'greater than 0'],
    [{ ...valid, currency: 'ABC' }, 'currency', '"ABC"', 'ISO 4217'],
    [{ ...valid, merchant_order_no: 'has space' }, 'merchant_order_no', '"has space"', 'A-Z'],
    [{ ...valid, merchant_order_no: 'x'.repeat(65) }, 'merchant_order_no', 'xxx', '1-64'],
    [{ ...valid, expires_in: 59 }, 'expires_in', '59', 'at least 60'],
    [{ ...valid, expires_in: 15 * 86400 + 1 }, 'expires_in', '1296001', '15 days'],
    [{ ...valid, capture_method: 'later' }, 'capture_method', '"later"', '"automatic" or "manual"'],
    [{ ...valid, notify_url: 'http://example.com/n' }, 'notify_url', 'http://example.com/n', 'https://'],
    [{ ...valid, payer: { email: 'not-an-email' } }, 'payer.email', 'not-an-email', 'valid email'],
    [{ ...valid, payer: { phone: '12345' } }, 'payer.phone', '"12345"', 'E.164'],
    [{ ...valid, metadata: { a: 1 } }, 'metadata.a', '1', 'strings'],
    [{ ...valid, metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])) }, 'metadata', '21 keys', 'at most 20'],
  ])('rejects %j naming %s, the value and the fix', (body, param, value, fix) => {
    const error = rejection(body);
    expect(error.param).toBe(param);
    expect(error.message).toContain(value);
    expect(error.message).toContain(fix);
  });

  it('names a missing required field', () => {
    const error = rejection({ amount: 1000, currency: 'USD' });
    expect(error).toMatchObject({ code: 'parameter_missing', param: 'merchant_order_no' });
  });

  it('names an unknown field, nested ones included', () => {
    expect(rejection({ ...valid, amont: 1 })).toMatchObject({ code: 'parameter_unknown', param: 'amont' });
    expect(rejection({ ...valid, payer: { nmae: 'x' } })).toMatchObject({ code: 'parameter_unknown', param: 'payer.nmae' });
  });

  it('allows http://localhost callbacks only in test mode, on a stage served on loopback (the local cloud)', () => {
    const body = { ...valid, return_url: 'http://localhost:8080/done' };
    expect(parseInput(createOrderSchema(false, true), body).return_url).toBe(body.return_url);
    expect(rejection(body, createOrderSchema(true, true)).param).toBe('return_url');
    expect(rejection(body, createOrderSchema(false)).param).toBe('return_url');
  });
});

describe('list orders validation', () => {
  it('parses limits and both timestamp forms', () => {
    const q = parseInput(listOrdersSchema, { limit: '100', 'created[gte]': '1767225600', 'created[lt]': '2026-02-01T00:00:00Z' });
    expect(q.limit).toBe(100);
    expect(q['created[gte]']?.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(q['created[lt]']?.toISOString()).toBe('2026-02-01T00:00:00.000Z');
  });

  it.each([
    [{ limit: '0' }, 'limit'],
    [{ limit: '101' }, 'limit'],
    [{ limit: 'ten' }, 'limit'],
    [{ status: 'paid' }, 'status'],
    [{ 'created[gte]': 'yesterday' }, 'created[gte]'],
    [{ sort: 'asc' }, 'sort'],
  ])('rejects %j naming %s', (query, param) => {
    expect(rejection(query, listOrdersSchema as never).param).toBe(param);
  });
});
