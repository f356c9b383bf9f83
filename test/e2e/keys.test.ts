import { describe, expect, it } from 'vitest';
import { call, newMerchant, orderBody, payplane } from './support';

/** Restricted keys end to end: made with the operator CLI, scopes enforced by api() from the authorizer's context. */

async function restrictedKey(merchantId: string, scopes: string): Promise<{ key: string; keyId: string }> {
  const made = await payplane('keys', 'create', '--merchant', merchantId, '--scope', scopes, '--json');
  expect(made.code, made.stderr).toBe(0);
  const created = JSON.parse(made.stdout);
  return { key: created.restricted_key, keyId: created.key_id };
}

describe('restricted keys', () => {
  it("a key with orders:read lists orders but gets 403 missing_scope naming the scope on what it lacks", async () => {
    // Prepare
    const m = await newMerchant('Scoped merchant');
    const order = await call('POST', '/v1/orders', { key: m.key, body: orderBody() });
    expect(order.status).toBe(201);
    const rk = await restrictedKey(m.id, 'orders:read');
    // Act
    const list = await call('GET', '/v1/orders', { key: rk.key });
    const get = await call('GET', `/v1/orders/${order.body.id}`, { key: rk.key });
    const create = await call('POST', '/v1/orders', { key: rk.key, body: orderBody(), idempotencyKey: 'scoped-1' });
    const balance = await call('GET', '/v1/balance', { key: rk.key });
    // Assess
    expect(list.status).toBe(200);
    expect(list.body.data.map((o: { id: string }) => o.id)).toContain(order.body.id);
    expect(get.status).toBe(200);
    expect(create.status).toBe(403);
    expect(create.body.error).toEqual({
      type: 'permission_error',
      code: 'missing_scope',
      param: 'orders:write',
      message: expect.stringContaining("lacks the scope 'orders:write'"),
      request_id: expect.any(String),
    });
    expect(balance.status).toBe(403);
    expect(balance.body.error).toMatchObject({ code: 'missing_scope', param: 'balance:read', message: expect.stringContaining('balance:read') });
    // The refusal was not stored as the key's answer: the secret key may use the same Idempotency-Key.
    expect((await call('POST', '/v1/orders', { key: m.key, body: orderBody(), idempotencyKey: 'scoped-1' })).status).toBe(201);
  });

  it('a write scope includes its read; the secret key keeps every scope', async () => {
    const m = await newMerchant('Write scope');
    const rk = await restrictedKey(m.id, 'orders:write');
    const created = await call('POST', '/v1/orders', { key: rk.key, body: orderBody() });
    expect(created.status).toBe(201);
    expect((await call('GET', `/v1/orders/${created.body.id}`, { key: rk.key })).status).toBe(200);
    expect((await call('GET', `/v1/orders/${created.body.id}/refunds`, { key: rk.key })).body.error?.param).toBe('refunds:read');
    expect((await call('GET', '/v1/balance', { key: m.key })).status).toBe(200);
  });

  it('keys roll leaves restricted keys working; keys revoke --key refuses the key at once (cache flushed)', async () => {
    // Prepare
    const m = await newMerchant('Revoke restricted');
    const rk = await restrictedKey(m.id, 'orders:read');
    expect((await call('GET', '/v1/orders', { key: rk.key })).status).toBe(200); // cached by the authorizer now
    // Act: roll the secret key
    const rolled = JSON.parse((await payplane('keys', 'roll', '--merchant', m.id, '--json')).stdout);
    // Assess
    expect((await call('GET', '/v1/orders', { key: m.key })).status).toBe(401);
    expect((await call('GET', '/v1/orders', { key: rolled.secret_key })).status).toBe(200);
    expect((await call('GET', '/v1/orders', { key: rk.key })).status).toBe(200);
    // Act: revoke the restricted key
    const revoked = await payplane('keys', 'revoke', '--key', rk.keyId);
    // Assess
    expect(revoked.code, revoked.stderr).toBe(0);
    const refused = await call('GET', '/v1/orders', { key: rk.key });
    expect(refused.status).toBe(401);
    expect(refused.body.error.type).toBe('authentication_error');
    expect((await call('GET', '/v1/orders', { key: rolled.secret_key })).status).toBe(200);
  });
});
