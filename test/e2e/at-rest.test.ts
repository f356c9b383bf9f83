import { describe, expect, it } from 'vitest';
import { call, cloud, dump, newMerchant, orderBody } from './support';

const PAN = '4242424242424242';
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z.]{2,}/;
/** A binary attribute's value in dump()'s JSON text. */
const BINARY = /"B":"(?:[^"\\]|\\.)*"/g;

describe('data at rest', () => {
  it('holds no card number, payer email, name or phone in plaintext in any table, idempotent responses included', async () => {
    const { key } = await newMerchant();
    const payer = { name: 'Plaintext Canary', email: 'canary.payer@example.com', phone: '+8613912345678' };
    const created = await call('POST', '/v1/orders', { key, body: orderBody({ payer }), idempotencyKey: `at-rest-${Date.now()}` });
    expect(created.body.payer).toEqual(payer);
    await call('POST', `/v1/orders/${created.body.id}/close`, { key, idempotencyKey: `at-rest-close-${Date.now()}` });
    // A paid order too: card data must not rest in plaintext either.
    const paid = (await call('POST', '/v1/orders', { key, body: orderBody({ payer }) })).body;
    const confirm = await call('POST', `/v1/orders/${paid.id}/confirm`, {
      key,
      idempotencyKey: `at-rest-pay-${Date.now()}`,
      body: { payment_method: { type: 'card', card: { number: PAN, exp_month: 12, exp_year: 2034, cvc: '123' } } },
    });
    expect(confirm.body.status).toBe('succeeded');
    expect(confirm.text).not.toContain(PAN);

    const c = cloud();
    for (const table of [c.tables.main!, c.tables.idempotency!]) {
      const items = await dump(table);
      expect(items.length).toBeGreaterThan(0);
      for (const item of items) {
        // Any email in a text attribute; in binary ones (ciphertext, as raw bytes) the canary's exact values: random
        // ciphertext bytes match the loose email pattern now and then (e.g. "K@h.OO"), the canary's address never.
        expect(item.replace(BINARY, '"B":"…"')).not.toMatch(EMAIL);
        expect(item).not.toContain(payer.email);
        expect(item).not.toContain(payer.name);
        expect(item).not.toContain(payer.phone);
        expect(item).not.toContain(PAN);
      }
    }
  });
});
