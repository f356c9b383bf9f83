import { describe, expect, it } from 'vitest';
import { ContractCheck } from '../e2e/contract';

const json = 'application/json; charset=utf-8';
const balance = { object: 'balance', available: [{ currency: 'USD', amount: 1050 }], pending: [], in_payout: [], authorized: [] };

describe('the e2e contract check (test/e2e/contract.ts)', () => {
  it('accepts a response that matches its schema', () => {
    const check = new ContractCheck();
    check.record({ method: 'GET', resource: '/v1/balance', status: 200, contentType: json, body: JSON.stringify(balance) });
    check.record({ method: 'GET', resource: '/v1/balance', status: 401, contentType: json, body: JSON.stringify({ error: { type: 'authentication_error', code: 'api_key_invalid', message: 'No valid API key.', request_id: 'r' } }) });
    expect(check.failures).toEqual([]);
    expect(check.checked).toBe(2);
  });

  it('refuses an unknown field, a missing one, an undocumented status and an undocumented route', () => {
    const check = new ContractCheck();
    check.record({ method: 'GET', resource: '/v1/balance', status: 200, contentType: json, body: JSON.stringify({ ...balance, surprise: 1 }) });
    check.record({ method: 'GET', resource: '/v1/balance', status: 200, contentType: json, body: JSON.stringify({ ...balance, authorized: undefined }) });
    check.record({ method: 'GET', resource: '/v1/balance', status: 418, contentType: json, body: '{}' });
    check.record({ method: 'GET', resource: '/v1/new_thing', status: 200, contentType: json, body: '{}' });
    expect(check.failures).toHaveLength(4);
    expect(check.failures[0]).toMatch(/additionalProperties/);
    expect(check.failures[1]).toMatch(/authorized/);
    expect(check.failures[2]).toMatch(/no response 418/);
    expect(check.failures[3]).toMatch(/not in docs\/openapi.json/);
  });

  it('leaves the checkout pages and the channel\'s notify route alone', () => {
    const check = new ContractCheck();
    check.record({ method: 'GET', resource: '/checkout/{id}', status: 200, contentType: 'text/html', body: '<html>' });
    expect(check.checked).toBe(0);
  });
});
