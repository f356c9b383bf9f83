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

  it('accepts payer.locale en and zh-CN', () => {
    expect(parseInput(createOrderSchema(false), { ...valid, payer: { locale: 'zh-CN' } }).payer).toEqual({ locale: 'zh-CN' });
    expect(parseInput(createOrderSchema(false), { ...valid, payer: { email: 'a@example.com', locale: 'en' } }).payer).toEqual({ email: 'a@example.com', locale: 'en' });
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
    [{ ...valid, payer: { locale: 'zh' } }, 'payer.locale', '"zh"', 'Use one of "en", "zh-CN"'],
    [{ ...valid, payer: { locale: 'zh-cn' } }, 'payer.locale', '"zh-cn"', '(case as shown)'],
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

/** Issue 7 §2 and finding 15: a card number typed into free text is refused, and the refusal names no digits. */
describe('card numbers in free-text fields', () => {
  const PAN = '4242424242424242';
  it.each([
    ['description', { description: `Paid with ${PAN}` }],
    ['description', { description: 'card 5555-5555-5555-4444 exp 12/30' }],
    ['payer.name', { payer: { name: '3782 822463 10005' } }],
    ['payer.email', { payer: { email: `${PAN}@example.com` } }],
    ['metadata.note', { metadata: { note: `pan ${PAN.match(/.{4}/g)!.join(' ')}` } }],
    [`metadata.${PAN}`, { metadata: { [PAN]: 'card' } }],
  ])('refuses %s with a message that says why', (param, over) => {
    const error = rejection({ ...valid, ...over });
    expect(error).toMatchObject({ code: 'parameter_invalid', param });
    expect(error.message).toContain('card number');
    expect(error.message.replace(param, '')).not.toMatch(/\d/);
  });

  it.each([
    ['a numeric merchant_order_no', { merchant_order_no: PAN }],
    ['an E.164 phone that passes Luhn with prefix 4 (a German mobile)', { payer: { phone: '+4915112345678' } }],
    ['a Luhn-invalid long number in the description', { description: 'Ref 4242424242424241' }],
    ['a 20-digit reference in metadata', { metadata: { ref: '42424242424242424242' } }],
  ])('accepts %s', (_, over) => {
    expect(() => parseInput(createOrderSchema(false), { ...valid, ...over })).not.toThrow();
  });
});

/** Issue 7 finding 8: keys from input are stored faithfully or refused with 400, never a 500 further down. */
describe('object-prototype names as metadata keys', () => {
  it.each(['constructor', '__proto__'])('refuses %s, which the DynamoDB marshaller cannot round-trip', (key) => {
    const body = JSON.parse(JSON.stringify(valid).replace(/}$/, `,"metadata":{"${key}":"x"}}`));
    expect(rejection(body)).toMatchObject({ code: 'parameter_invalid', param: `metadata.${key}` });
    expect(rejection(body).message).toContain('reserved');
  });

  it('keeps other prototype names as ordinary keys', () => {
    const metadata = { toString: 'a', hasOwnProperty: 'b', valueOf: 'c', isPrototypeOf: 'd' };
    expect(parseInput(createOrderSchema(false), { ...valid, metadata }).metadata).toEqual(metadata);
  });

  it.each(['__proto__', 'constructor'])('refuses %s as a top-level or payer field', (key) => {
    for (const json of [`{"${key}":{"amount":1},`, `{"payer":{"${key}":"x"},`]) {
      const body = JSON.parse(json + JSON.stringify(valid).slice(1));
      expect(rejection(body).code).toBe('parameter_unknown');
    }
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
