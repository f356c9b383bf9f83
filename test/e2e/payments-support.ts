import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeKeyCommand, KMSClient, ListKeysCommand } from '@aws-sdk/client-kms';
import { DynamoDBDocumentClient, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { expect } from 'vitest';
import { KmsMacSigner, type MacSigner } from '../../functions/channels/sandbox/signer';
import { toWireAmount, type WireTrade } from '../../functions/channels/sandbox/transformers';
import { call, cloud, orderBody } from './support';

/** The sandbox's test cards (functions/channels/sandbox/test-cards.ts). */
export const CARDS = {
  success: '4242424242424242',
  declined: '4000000000000002',
  insufficientFunds: '4000000000009995',
  expired: '4000000000000069',
  incorrectCvc: '4000000000000127',
  threeDSecure: '4000000000003220',
  asyncSuccess: '4000000000000259',
  asyncFailure: '4000000000000341',
  timeout: '4000000000000119',
} as const;

export const card = (number: string) => ({ payment_method: { type: 'card', card: { number, exp_month: 12, exp_year: 2034, cvc: '123' } } });

/** Creates an order and returns its id. */
export async function newOrder(key: string, over: Record<string, unknown> = {}): Promise<string> {
  const res = await call('POST', '/v1/orders', { key, body: orderBody(over), idempotencyKey: randomUUID() });
  expect(res.status, res.text).toBe(201);
  return res.body.id as string;
}

export const confirm = (key: string, orderId: string, number: string) =>
  call('POST', `/v1/orders/${orderId}/confirm`, { key, body: card(number), idempotencyKey: randomUUID() });

/** Creates and pays an order with 4242…; returns the paid order. */
export async function paidOrder(key: string, over: Record<string, unknown> = {}) {
  const id = await newOrder(key, over);
  const res = await confirm(key, id, CARDS.success);
  expect(res.status, res.text).toBe(200);
  return res.body;
}

/** GETs the order until `done(order)` or the deadline (asynchronous results travel queue → notifier → notify). */
export async function waitForOrder(key: string, id: string, done: (order: any) => boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await call('GET', `/v1/orders/${id}`, { key });
    expect(res.status, res.text).toBe(200);
    if (done(res.body)) return res.body;
    if (Date.now() > deadline) throw new Error(`order ${id} still ${res.body.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * GET /v1/balance in one currency (Stripe's meanings): with a new merchant's default delay of one business day
 * (UTC), what a test captures is `pending`, refunds come off `available` at once, `authorized` is not captured.
 */
export async function balanceOf(key: string, currency = 'USD') {
  const res = await call('GET', '/v1/balance', { key });
  expect(res.status, res.text).toBe(200);
  const pick = (rows: { currency: string; amount: number }[]) => rows.find((r) => r.currency === currency)?.amount ?? 0;
  return { available: pick(res.body.available), pending: pick(res.body.pending), in_payout: pick(res.body.in_payout), authorized: pick(res.body.authorized) };
}

/** The card fee of the default schedule: 2.9 % (half up) + 0.30, capped at the amount (functions/ledger/fees.ts). */
export const cardFee = (amount: number) => Math.min(amount, Math.floor((amount * 290 + 5_000) / 10_000) + 30);

let db: DynamoDBDocumentClient | undefined;
function table() {
  const c = cloud();
  db ??= DynamoDBDocumentClient.from(
    new DynamoDBClient({ region: c.region, endpoint: c.endpoints.dynamodb, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
  );
  return { db, name: c.tables.main! };
}

/** Every payment attempt of an order, read straight from the main table (the API shows only the latest). */
export async function attemptsOf(orderId: string): Promise<{ id: string; status: string }[]> {
  const { db, name } = table();
  const out: { id: string; status: string }[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await db.send(
      new ScanCommand({
        TableName: name,
        FilterExpression: '#type = :payment AND order_id = :order',
        ExpressionAttributeNames: { '#type': 'type' },
        ExpressionAttributeValues: { ':payment': 'payment', ':order': orderId },
        ExclusiveStartKey: start,
      }),
    );
    out.push(...(page.Items ?? []).map((i) => ({ id: i.id as string, status: i.status as string })));
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}

/** The sandbox channel's own record of an attempt (its "bank side"), or undefined if the channel never saw it. */
export async function sandboxTrade(paymentId: string): Promise<Record<string, any> | undefined> {
  const { db, name } = table();
  const { Item } = await db.send(new GetCommand({ TableName: name, Key: { pk: `SANDBOX#${paymentId}`, sk: 'TRADE' }, ConsistentRead: true }));
  return Item;
}

/**
 * Waits until the sandbox callback queue holds no message (visible, in flight or delayed): every callback
 * sent so far went through the notifier and was acknowledged by the notify route. Only meaningful while no
 * other test schedules callbacks (the tests that do live in one file, run in order).
 */
export async function callbacksDrained(timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = (await (await fetch(`${cloud().endpoints.sqs}/__stats`)).json()) as { queues: Record<string, { visible: number; inFlight: number; delayed: number }> };
    const [name, q] = Object.entries(stats.queues).find(([n]) => n.includes('SandboxCallbacks') && !n.includes('Dlq')) ?? [];
    if (!q) throw new Error(`no SandboxCallbacks queue in ${Object.keys(stats.queues).join(', ')}`);
    if (q.visible + q.inFlight + q.delayed === 0) return;
    if (Date.now() > deadline) throw new Error(`${name} still holds ${JSON.stringify(q)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The sandbox trade as the wire shows it (amounts in major units), to build notifications from. */
export function wireTradeOf(trade: Record<string, any>, over: Partial<WireTrade> = {}): WireTrade {
  const cur = trade.currency as string;
  return {
    trade_no: trade.trade_no,
    out_trade_no: trade.out_trade_no,
    trade_status: trade.trade_status,
    total_amount: toWireAmount(trade.total_amount, cur),
    currency: cur,
    authorized_amount: toWireAmount(trade.authorized_amount, cur),
    captured_amount: toWireAmount(trade.captured_amount, cur),
    refunded_amount: toWireAmount(trade.refunded_amount, cur),
    refunds: [],
    seq: String(trade.seq),
    gmt_modified: trade.gmt_modified,
    ...over,
  };
}

/** The stage's real sandbox signing key in the local KMS (found by its description), as the notifier uses it. */
export async function sandboxSigner(): Promise<MacSigner> {
  const c = cloud();
  const client = new KMSClient({ region: c.region, endpoint: c.endpoints.kms, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const { Keys = [] } = await client.send(new ListKeysCommand({}));
  for (const k of Keys) {
    const { KeyMetadata } = await client.send(new DescribeKeyCommand({ KeyId: k.KeyId }));
    if (KeyMetadata?.KeySpec === 'HMAC_256' && KeyMetadata.Description?.includes('sandbox channel signs')) return new KmsMacSigner(KeyMetadata.Arn!, () => client);
  }
  throw new Error('no sandbox signing key (HMAC_256, "sandbox channel signs …") in the local KMS');
}
