import { randomUUID } from 'node:crypto';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { call, cloud, newMerchant, orderBody } from './support';

let key: string;
beforeAll(async () => {
  ({ key } = await newMerchant());
});

describe('POST /v1/orders', () => {
  it('creates an order with the documented shape', async () => {
    const body = orderBody({
      amount: 500,
      currency: 'JPY',
      payer: { name: 'Han Meimei', email: 'han@example.com', phone: '+8613800138000' },
      metadata: { cart: '42' },
      return_url: 'http://localhost:8080/return',
    });
    const res = await call('POST', '/v1/orders', { key, body, idempotencyKey: randomUUID() });
    expect(res.status).toBe(201);
    expect(res.headers.get('request-id')).toBeTruthy();
    const order = res.body;
    expect(order).toMatchObject({
      object: 'order',
      status: 'requires_payment',
      amount: 500,
      currency: 'JPY',
      amount_refunded: 0,
      merchant_order_no: body.merchant_order_no,
      payer: body.payer,
      metadata: { cart: '42' },
      capture_method: 'automatic',
    });
    expect(order.id).toMatch(/^ord_[A-Za-z0-9]{24}$/);
    expect(order.checkout_url).toBe(`${cloud().url}/checkout/${order.id}`);
    for (const field of ['created_at', 'updated_at', 'expires_at']) expect(order[field]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(order.expires_at) - Date.parse(order.created_at)).toBe(30 * 60 * 1000);
  });

  it('accepts the smallest unit of three-decimal currencies', async () => {
    const res = await call('POST', '/v1/orders', { key, body: orderBody({ amount: 1, currency: 'KWD' }) });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ amount: 1, currency: 'KWD' });
  });
});

describe('GET /v1/orders/{id}', () => {
  it('returns the order with the payer for its owner', async () => {
    const created = await call('POST', '/v1/orders', { key, body: orderBody({ payer: { email: 'owner.sees@example.com' } }) });
    const res = await call('GET', `/v1/orders/${created.body.id}`, { key });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(created.body);
  });

  it('answers an unknown id with 404 resource_missing', async () => {
    const res = await call('GET', '/v1/orders/ord_unknown', { key });
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code: 'resource_missing', param: 'id' });
    expect(res.body.error.request_id).toBe(res.headers.get('request-id'));
  });
});

describe('GET /v1/orders', () => {
  it('pages newest first with limit and starting_after', async () => {
    const { key: own } = await newMerchant();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await call('POST', '/v1/orders', { key: own, body: orderBody() })).body.id);
    const expected = [...ids].reverse();

    const first = await call('GET', '/v1/orders?limit=2', { key: own });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ object: 'list', has_more: true });
    expect(first.body.data.map((o: any) => o.id)).toEqual(expected.slice(0, 2));

    const seen = [...first.body.data];
    let page = first;
    while (page.body.has_more) {
      page = await call('GET', `/v1/orders?limit=2&starting_after=${seen.at(-1).id}`, { key: own });
      seen.push(...page.body.data);
    }
    expect(seen.map((o) => o.id)).toEqual(expected);
  });

  it('filters by status, merchant_order_no and creation time', async () => {
    const { key: own } = await newMerchant();
    const open = (await call('POST', '/v1/orders', { key: own, body: orderBody({ merchant_order_no: 'FILTER-OPEN' }) })).body;
    const closing = (await call('POST', '/v1/orders', { key: own, body: orderBody() })).body;
    await call('POST', `/v1/orders/${closing.id}/close`, { key: own });

    const closed = await call('GET', '/v1/orders?status=closed', { key: own });
    expect(closed.body.data.map((o: any) => o.id)).toEqual([closing.id]);
    const payable = await call('GET', '/v1/orders?status=requires_payment', { key: own });
    expect(payable.body.data.map((o: any) => o.id)).toEqual([open.id]);
    const byNo = await call('GET', '/v1/orders?merchant_order_no=FILTER-OPEN', { key: own });
    expect(byNo.body.data.map((o: any) => o.id)).toEqual([open.id]);

    const since = encodeURIComponent(closing.created_at);
    const recent = await call('GET', `/v1/orders?created[gte]=${since}`, { key: own });
    expect(recent.body.data.map((o: any) => o.id)).toEqual([closing.id]);
    const before = await call('GET', `/v1/orders?created[lt]=${since}`, { key: own });
    expect(before.body.data.map((o: any) => o.id)).toEqual([open.id]);
  });
});

describe('POST /v1/orders/{id}/close', () => {
  it('closes an unpaid order, and returns it again when closed twice', async () => {
    const order = (await call('POST', '/v1/orders', { key, body: orderBody() })).body;
    const closed = await call('POST', `/v1/orders/${order.id}/close`, { key });
    expect(closed.status).toBe(200);
    expect(closed.body).toMatchObject({ id: order.id, status: 'closed', close_reason: 'merchant' });
    const again = await call('POST', `/v1/orders/${order.id}/close`, { key });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(closed.body);
  });
});

describe('expiry', () => {
  // One real minute: the shortest expires_in the API accepts. The e2e cloud runs schedules only on demand.
  it('shows an expired order closed on read, and the sweep then closes it in the table', { timeout: 120_000 }, async () => {
    const { key: own } = await newMerchant();
    const order = (await call('POST', '/v1/orders', { key: own, body: orderBody({ expires_in: 60 }) })).body;
    expect(order.status).toBe('requires_payment');
    await new Promise((r) => setTimeout(r, Date.parse(order.expires_at) - Date.now() + 500));

    const read = await call('GET', `/v1/orders/${order.id}`, { key: own });
    expect(read.body).toMatchObject({ status: 'closed', close_reason: 'expired', closed_at: order.expires_at });
    expect(await storedStatus(order.id)).toBe('requires_payment');

    // Fire the template's schedule rule for the sweep (its logical id carries CDK's hash suffix).
    const admin = cloud().endpoints.admin;
    const { rules } = (await (await fetch(`${admin}/__schedules`)).json()) as { rules: Array<{ logicalId: string }> };
    const rule = rules.find((r) => r.logicalId.startsWith('ExpireOrdersSchedule'));
    const trigger = await fetch(`${admin}/__schedules/${rule!.logicalId}/trigger`, { method: 'POST' });
    expect(trigger.status).toBe(200);
    expect(await storedStatus(order.id)).toBe('closed');
    const after = await call('GET', `/v1/orders/${order.id}`, { key: own });
    // The sweep writes what reads showed already: only updated_at and the version (order.closed is its event) move.
    expect(after.body).toEqual({ ...read.body, updated_at: after.body.updated_at, version: read.body.version + 1 });
  });
});

async function storedStatus(id: string): Promise<string | undefined> {
  const c = cloud();
  const db = new DynamoDBClient({ region: c.region, endpoint: c.endpoints.dynamodb, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const { Item } = await db.send(new GetItemCommand({ TableName: c.tables.main!, Key: { pk: { S: `ORDER#${id}` }, sk: { S: 'ORDER' } } }));
  return Item?.status?.S;
}
