import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { call, cloud, newMerchant, orderBody, payplane } from './support';

/**
 * Payer receipts through the whole local cloud: the operator turns receipts on with the CLI, the payer pays on the
 * hosted checkout in Chinese (which makes zh-CN the order's payer.locale), the writer's order.succeeded event goes
 * through the table's stream to the publisher, which sends its message to the receipts queue. The sender (its own
 * function, IAM enforced) sends through the local SES and SNS: the outbox holds exactly one .eml and one .json for
 * the event, in Chinese, even after the administrator sends the publisher's message `{"event_id","merchant_id"}`
 * twice more (as a stream retry or the sweeper would).
 */
const admin = { accessKeyId: 'local', secretAccessKey: 'local' };
const sqs = new SQSClient({ region: cloud().region, endpoint: cloud().endpoints.sqs, credentials: admin });
afterAll(() => {
  sqs.destroy();
});

const receiptsQueueUrl = () => {
  const [, url] = Object.entries(cloud().queues).find(([id]) => id.startsWith('ReceiptsQueue')) ?? [];
  if (!url) throw new Error(`no receipts queue among ${Object.keys(cloud().queues).join(', ')}`);
  return url;
};

/** Polls what the pipeline makes true by itself (no fixed sleeps; gives up after `ms`). */
async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Until the receipts queue holds nothing (visible, in flight or delayed): every message sent so far was handled. */
async function receiptsDrained(timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = (await (await fetch(`${cloud().endpoints.sqs}/__stats`)).json()) as { queues: Record<string, { visible: number; inFlight: number; delayed: number }> };
    const [name, q] = Object.entries(stats.queues).find(([n]) => n.includes('ReceiptsQueue')) ?? [];
    if (!q) throw new Error(`no receipts queue in ${Object.keys(stats.queues).join(', ')}`);
    if (q.visible + q.inFlight + q.delayed === 0) return;
    if (Date.now() > deadline) throw new Error(`${name} still holds ${JSON.stringify(q)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The outbox's files for one payer: emails by their To header, SMS by `to`. */
function outboxFor(email: string, phone: string) {
  const dir = cloud().outbox;
  const files = readdirSync(dir);
  const emails = files.filter((f) => f.endsWith('.eml')).map((f) => readFileSync(join(dir, f), 'utf8')).filter((eml) => new RegExp(`^To: ${email}\\r$`, 'm').test(eml));
  const sms = files.filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8'))).filter((m) => m.to === phone);
  return { emails, sms };
}

const decode = (eml: string) =>
  [
    /^Subject: (.*(?:\r\n .*)*)/m.exec(eml)![1]!.replace(/=\?UTF-8\?B\?([^?]+)\?=\s*/g, (_m, b: string) => Buffer.from(b, 'base64').toString('utf8')),
    ...[...eml.matchAll(/Content-Transfer-Encoding: base64\r\n\r\n([A-Za-z0-9+/=\r\n]+)/g)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64').toString('utf8')),
  ].join('\n');

describe('payer receipts', () => {
  it('one email and one SMS per paid order, through the real publisher, in the language the payer paid in, however often the message arrives', async () => {
    // Prepare: a merchant with receipts on (operator CLI) and an order with the payer's contact, no locale.
    const merchant = await newMerchant('Receipts E2E');
    const set = await payplane('merchants', 'receipts', 'set', '--merchant', merchant.id, '--email', 'on', '--sms', 'on');
    expect(set.code, set.stderr).toBe(0);
    const email = `payer.${randomUUID().slice(0, 8)}@example.com`;
    const phone = `+86139${String(Date.now() % 1e8).padStart(8, '0')}`;
    const created = await call('POST', '/v1/orders', { key: merchant.key, idempotencyKey: randomUUID(), body: orderBody({ amount: 8800, currency: 'CNY', payer: { email, phone } }) });
    expect(created.status, created.text).toBe(201);
    // The payer pays on the hosted checkout in Chinese.
    const paid = await fetch(`${created.body.checkout_url}?lang=zh-CN`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ number: '4242 4242 4242 4242', exp: '12/34', cvc: '123', lang: 'zh-CN' }).toString(),
      redirect: 'manual',
    });
    expect(paid.status).toBe(303);
    const order = await call('GET', `/v1/orders/${created.body.id}`, { key: merchant.key });
    expect(order.body).toMatchObject({ status: 'succeeded', payer: { email, phone, locale: 'zh-CN' } });
    // The writer wrote order.succeeded with the payment; the stream's publisher sends its receipt message.
    const event = await until('the order.succeeded event', async () => {
      const listed = await call('GET', '/v1/events?type=order.succeeded', { key: merchant.key });
      return listed.body.data?.find((e: { data: { object: { id: string } } }) => e.data.object.id === created.body.id);
    });
    await until('the receipt in the outbox', () => outboxFor(email, phone).emails.length > 0 && outboxFor(email, phone).sms.length > 0);
    // Act: the publisher's message arrives twice more (a stream retry, the sweeper), at once.
    const message = JSON.stringify({ event_id: event.id, merchant_id: merchant.id });
    await Promise.all([1, 2].map(() => sqs.send(new SendMessageCommand({ QueueUrl: receiptsQueueUrl(), MessageBody: message }))));
    await receiptsDrained();
    // Assess
    const { emails, sms } = outboxFor(email, phone);
    expect(emails).toHaveLength(1);
    expect(sms).toHaveLength(1);
    const text = decode(emails[0]!);
    expect(text).toContain('Receipts E2E 付款凭证：¥88.00');
    expect(text).toContain('您已向 Receipts E2E 成功付款 ¥88.00。');
    expect(emails[0]).toMatch(/^From: "Payplane receipts" <receipts@dev\.payplane\.example>\r$/m);
    expect(sms[0]).toMatchObject({ to: phone, body: `【Payplane】您已向Receipts E2E付款¥88.00（订单号 ${created.body.merchant_order_no}）。`, message_id: expect.any(String) });
  });
});
