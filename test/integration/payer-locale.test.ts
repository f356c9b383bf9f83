import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import { CARDS, card, paymentCase, sandboxWorld } from './payments-world';
import { useLocalServices } from './env';

/**
 * payer.locale: the receipts' language. Sent on create, stored in plaintext beside the sealed contact details
 * (so the checkout and the receipts read it without opening the payer), shown in the API; the hosted checkout's
 * language fills it at confirm when the order has none.
 */
let table: string;
const sandboxes = sandboxWorld();
beforeAll(() => {
  table = useLocalServices().tables.main;
});
const stored = async (id: string) => (await dynamo().send(new GetCommand({ TableName: table, Key: { pk: `ORDER#${id}`, sk: 'ORDER' } }))).Item!;

describe('payer.locale', () => {
  it('is accepted on create, shown in the API with the contact details, and stored outside the sealed payer', async () => {
    // Prepare
    const c = paymentCase(table, newId('mch'), sandboxes.sandbox);
    // Act
    const created = await c.order({ payer: { email: 'li.lei@example.com', locale: 'zh-CN' } });
    const read = await c.service.getOrder(c.caller(), created.id);
    // Assess
    expect(created.payer).toEqual({ email: 'li.lei@example.com', locale: 'zh-CN' });
    expect(read.payer).toEqual({ email: 'li.lei@example.com', locale: 'zh-CN' });
    const item = await stored(created.id);
    expect(item.payer_locale).toBe('zh-CN');
    expect(item.payer_ciphertext).toBeInstanceOf(Uint8Array);
  });

  it('alone makes a payer of just the language, with nothing sealed', async () => {
    const c = paymentCase(table, newId('mch'), sandboxes.sandbox);
    const created = await c.order({ payer: { locale: 'en' } });
    expect(created.payer).toEqual({ locale: 'en' });
    expect((await stored(created.id)).payer_ciphertext).toBeUndefined();
  });

  it("is filled by the checkout's language at confirm when the order has none", async () => {
    // Prepare
    const c = paymentCase(table, newId('mch'), sandboxes.sandbox);
    const order = await c.order({ payer: { phone: '+8613800138000' } });
    // Act: the hosted checkout confirms with its page language.
    const paid = await c.service.confirm({ ...c.caller(), payerLocale: 'zh-CN' }, order.id, card(CARDS.success));
    // Assess
    expect(paid.status).toBe('succeeded');
    expect(paid.payer).toEqual({ phone: '+8613800138000', locale: 'zh-CN' });
    expect((await stored(order.id)).payer_locale).toBe('zh-CN');
  });

  it("never overrides the merchant's payer.locale with the checkout's", async () => {
    const c = paymentCase(table, newId('mch'), sandboxes.sandbox);
    const order = await c.order({ payer: { email: 'a@example.com', locale: 'en' } });
    await c.service.confirm({ ...c.caller(), payerLocale: 'zh-CN' }, order.id, card(CARDS.success));
    expect((await stored(order.id)).payer_locale).toBe('en');
  });

  it('stays absent for an API confirm (no checkout language)', async () => {
    const c = paymentCase(table, newId('mch'), sandboxes.sandbox);
    const order = await c.order({});
    const paid = await c.service.confirm(c.caller(), order.id, card(CARDS.success));
    expect(paid.payer).toBeNull();
    expect((await stored(order.id)).payer_locale).toBeUndefined();
  });
});
