import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../local/assembly';
import { call, cloud, newMerchant, orderBody } from './support';

describe('tenant isolation', () => {
  let alice: { id: string; key: string };
  let bob: { id: string; key: string };
  let aliceOrder: any;
  beforeAll(async () => {
    [alice, bob] = await Promise.all([newMerchant('Alice'), newMerchant('Bob')]);
    aliceOrder = (await call('POST', '/v1/orders', { key: alice.key, body: orderBody({ merchant_order_no: 'SAME-NO', payer: { email: 'alice.payer@example.com' } }) })).body;
  });

  it("answers another merchant's order exactly like an unknown id", async () => {
    const theirs = await call('GET', `/v1/orders/${aliceOrder.id}`, { key: bob.key });
    const unknown = await call('GET', '/v1/orders/ord_unknownUnknownUnknown0', { key: bob.key });
    expect(theirs.status).toBe(404);
    expect(unknown.status).toBe(404);
    const strip = (e: any) => ({ ...e, message: e.message.replace(/ord_\w+/, 'ID'), request_id: undefined });
    expect(strip(theirs.body.error)).toEqual(strip(unknown.body.error));
    expect(theirs.text).not.toContain('alice.payer');
  });

  it("cannot close, list or page through another merchant's orders", async () => {
    expect((await call('POST', `/v1/orders/${aliceOrder.id}/close`, { key: bob.key })).status).toBe(404);
    const list = await call('GET', '/v1/orders?limit=100', { key: bob.key });
    expect(list.body.data.map((o: any) => o.id)).not.toContain(aliceOrder.id);
    expect((await call('GET', `/v1/orders?starting_after=${aliceOrder.id}`, { key: bob.key })).status).toBe(404);
    expect((await call('GET', '/v1/orders?merchant_order_no=SAME-NO', { key: bob.key })).body.data).toEqual([]);
    expect((await call('GET', `/v1/orders/${aliceOrder.id}`, { key: alice.key })).body.status).toBe('requires_payment');
  });

  it('lets two merchants use the same merchant_order_no', async () => {
    expect((await call('POST', '/v1/orders', { key: bob.key, body: orderBody({ merchant_order_no: 'SAME-NO' }) })).status).toBe(201);
  });
});

describe('authentication', () => {
  it.each([
    ['no Authorization header', {}],
    ['a malformed key', { Authorization: 'Bearer sk_test_short' }],
    ['an unknown key', { Authorization: `Bearer sk_test_${'A'.repeat(32)}` }],
    ['the wrong scheme', { Authorization: `Basic ${Buffer.from('sk_test_x:').toString('base64')}` }],
  ])('refuses %s with 401 in the API error shape', async (_, headers) => {
    const res = await call('GET', '/v1/orders', { headers });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatchObject({ type: 'authentication_error' });
    expect(res.body.error.request_id).toBeTruthy();
    expect(res.headers.get('request-id')).toBe(res.body.error.request_id);
  });

  it('refuses a rolled key at once, through the real CLI, while the new key works', async () => {
    const c = cloud();
    // The CLI finds the local cloud through the file `npm start` writes; this cloud is private to the suite.
    const file = join(mkdtempSync(join(tmpdir(), 'payplane-cli-')), 'local.json');
    writeFileSync(
      file,
      JSON.stringify({ apiUrl: c.url, region: c.region, stage: c.stage, restApiId: c.restApiId, endpoints: c.endpoints, tables: c.tables, kmsKeyArn: c.kmsKeyArn, operatorCredentials: c.operatorCredentials }),
    );
    const cli = (...args: string[]) =>
      promisify(execFile)('node', [join(PROJECT_ROOT, 'cli/payplane.mjs'), ...args], { env: { ...process.env, PAYPLANE_LOCAL_FILE: file } });

    const created = JSON.parse((await cli('merchants', 'create', '--name', 'CLI merchant', '--json')).stdout);
    expect(created).toMatchObject({ id: expect.stringMatching(/^mch_/), secret_key: expect.stringMatching(/^sk_test_/) });
    const old = created.secret_key as string;
    expect((await call('GET', '/v1/orders', { key: old })).status).toBe(200); // now cached by the authorizer

    const rolled = JSON.parse((await cli('keys', 'roll', '--merchant', created.id, '--json')).stdout);
    expect(rolled.secret_key).not.toBe(old);
    expect((await call('GET', '/v1/orders', { key: old })).status).toBe(401);
    expect((await call('GET', '/v1/orders', { key: rolled.secret_key })).status).toBe(200);

    // The operator seals a bank account with the stack's key (purpose bank_account: docs/operator-policy.json),
    // and sees only its last 4.
    const payouts = await cli('merchants', 'payouts', 'set', '--merchant', created.id, '--currency', 'USD', '--delay-days', '2', '--bank-account', '000123450119', '--json');
    expect(JSON.parse(payouts.stdout)).toEqual({ merchant_id: created.id, payout: { settlement_currency: 'USD', delay_days: 2, bank_account_last4: '0119' } });
    expect(payouts.stdout).not.toContain('000123450119');
  });
});
