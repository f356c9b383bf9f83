import { createPublicKey, randomUUID, verify, type KeyObject } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalString } from '../../functions/checkout/sign';
import { call, cloud, newMerchant, orderBody } from './support';

/** Issue 7 finding 11 (the return signature names the merchant) and 15c (HSTS on every checkout answer). */

let publicKey: KeyObject;
let alice: { id: string; key: string };
let bob: { id: string; key: string };

beforeAll(async () => {
  const c = cloud();
  const kms = new KMSClient({ region: c.region, endpoint: c.endpoints.kms, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const { PublicKey } = await kms.send(new GetPublicKeyCommand({ KeyId: `alias/payplane-${c.stage}-checkout-signing` }));
  publicKey = createPublicKey({ key: Buffer.from(PublicKey!), format: 'der', type: 'spki' });
  [alice, bob] = await Promise.all([newMerchant('Alice'), newMerchant('Bob')]);
});

async function order(key: string, over: Record<string, unknown> = {}) {
  const res = await call('POST', '/v1/orders', { key, idempotencyKey: randomUUID(), body: orderBody({ return_url: 'http://127.0.0.1:9/thanks', ...over }) });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; checkout_url: string; merchant_order_no: string };
}

/** The payer's form POST, as the browser sends it; redirects are not followed. */
const submit = (checkoutUrl: string, fields: Record<string, string>) =>
  fetch(checkoutUrl, { method: 'POST', redirect: 'manual', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });

const verifies = (params: Record<string, string>) => verify('sha256', Buffer.from(canonicalString(params)), publicKey, Buffer.from(params.sign ?? '', 'base64url'));

describe('the return signature covers merchant_id (finding 11)', () => {
  it("signs the order's merchant, so a signature for Alice's order does not verify as Bob's", async () => {
    // Alice pays her own order to obtain a signature for a merchant_order_no and amount Bob also uses.
    const mine = await order(alice.key, { merchant_order_no: 'SHARED-NO-1', amount: 5000 });
    const res = await submit(mine.checkout_url, { number: '4242424242424242', exp: '12/34', cvc: '123' });
    expect(res.status).toBe(303);
    const params = Object.fromEntries(new URL(res.headers.get('location')!).searchParams);
    expect(params).toMatchObject({ merchant_id: alice.id, order_id: mine.id, merchant_order_no: 'SHARED-NO-1', amount: '5000', status: 'succeeded' });
    expect(verifies(params)).toBe(true);
    // Shown to Bob's return_url as his own: the signature no longer holds, with merchant_id changed or dropped.
    expect(verifies({ ...params, merchant_id: bob.id })).toBe(false);
    const { merchant_id: _dropped, ...withoutMerchant } = params;
    expect(verifies(withoutMerchant)).toBe(false);
  });
});

describe('HSTS on the checkout (finding 15c)', () => {
  it('sends Strict-Transport-Security on the form, errors, redirects and unknown orders', async () => {
    const o = await order(alice.key);
    const threeDs = await order(alice.key);
    const answers = [
      await fetch(o.checkout_url), // 200 form
      await submit(o.checkout_url, { number: '4242424242424242', exp: 'soon', cvc: '123' }), // 400 form with errors
      await submit(o.checkout_url, { number: '4242424242424242', exp: '12/34', cvc: '123' }), // 303 to return_url
      await fetch(o.checkout_url, { redirect: 'manual' }), // 200 result page
      await submit(threeDs.checkout_url, { number: '4000000000003220', exp: '12/34', cvc: '123' }), // 303 to the challenge
      await fetch(`${threeDs.checkout_url}/3ds`), // 200 challenge
      await fetch(`${cloud().url}/checkout/ord_000000000000000000000000`), // 404
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 400, 303, 200, 303, 200, 404]);
    for (const r of answers) {
      const hsts = r.headers.get('strict-transport-security') ?? '';
      expect(hsts, r.url).toMatch(/^max-age=(\d+); includeSubDomains/);
      expect(Number(/max-age=(\d+)/.exec(hsts)![1])).toBeGreaterThanOrEqual(31536000);
    }
  });
});

describe('the checkout never decrypts the payer (finding 13)', () => {
  it('serves and pays an order whose payer cannot be opened, which the API cannot present', async () => {
    const o = await order(alice.key, { payer: { name: 'Li Lei', email: 'li.lei@example.com' } });
    // A payer ciphertext nobody can open: any attempt to decrypt it fails the request.
    const c = cloud();
    const db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: c.region, endpoint: c.endpoints.dynamodb, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
    );
    await db.send(
      new UpdateCommand({ TableName: c.tables.main!, Key: { pk: `ORDER#${o.id}`, sk: 'ORDER' }, UpdateExpression: 'SET payer_ciphertext = :x', ExpressionAttributeValues: { ':x': new Uint8Array(64).fill(7) } }),
    );
    expect((await call('GET', `/v1/orders/${o.id}`, { key: alice.key })).status).toBe(500);

    const page = await fetch(o.checkout_url);
    expect(page.status).toBe(200);
    expect(await page.text()).not.toContain('Li Lei');
    const paid = await submit(o.checkout_url, { number: '4242424242424242', exp: '12/34', cvc: '123' });
    expect(paid.status).toBe(303);
    expect(paid.headers.get('location')).toContain('status=succeeded');
  });
});
