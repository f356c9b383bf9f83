import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import { API_VERSION, eventItem, newEventId, type EventType, type PlatformEvent } from '../../functions/events/event';
import { createMerchant } from '../../functions/merchants/service';
import type { ApiPaymentOrder, ApiRefund } from '../../functions/payments/payment';
import { ReceiptClaims } from '../../functions/receipts/claims';
import { CLAIM_LEASE_SECONDS } from '../../functions/receipts/config';
import { resetProviderClients, sesEmail, snsSms } from '../../functions/receipts/providers';
import { sendReceipts, type ReceiptsDeps } from '../../functions/receipts/sender';
import { Outbox } from '../../local/outbox';
import { startSes, type SesEndpoint } from '../../local/ses';
import { startSns, type SnsEndpoint } from '../../local/sns';
import { LocalStack } from '../../local/template';
import { CARDS, card, paymentCase, sandboxWorld } from './payments-world';
import { useLocalServices } from './env';
import { TEST_BY } from '../actors';

/**
 * The receipts sender (functions/receipts/sender.ts) against DynamoDB Local, the KMS emulator and the local SES
 * and SNS through the real SDK clients: for a real order paid through the payment service and its event item, the
 * outbox holds exactly one .eml and one .json per event, in the payer's language, however often and however
 * concurrently the message is delivered, and a failed send is sent again on the retry.
 */
let table: string;
let dir: string;
let ses: SesEndpoint;
let sns: SnsEndpoint;
let outbox: Outbox;
const sandboxes = sandboxWorld();

beforeAll(async () => {
  table = useLocalServices().tables.main;
  // The local SES knows the sending identity from the template; a two-resource one stands in for the stack's.
  const stack = new LocalStack(
    { Resources: { Identity: { Type: 'AWS::SES::EmailIdentity', Properties: { EmailIdentity: 'payplane.example' } }, Set: { Type: 'AWS::SES::ConfigurationSet', Properties: { Name: 'receipts' } } } },
    { stackName: 'Payplane-receipts' },
  );
  dir = mkdtempSync(join(tmpdir(), 'payplane-receipts-'));
  outbox = new Outbox(dir);
  [ses, sns] = await Promise.all([startSes(stack, { outbox }), startSns(stack, { outbox })]);
  process.env.AWS_ENDPOINT_URL_SESV2 = ses.url;
  process.env.AWS_ENDPOINT_URL_SNS = sns.url;
  resetProviderClients();
});
afterAll(async () => {
  resetProviderClients();
  await ses?.stop();
  await sns?.stop();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const deps = (over: Partial<ReceiptsDeps> = {}): ReceiptsDeps => ({
  table,
  from: 'Payplane receipts <receipts@payplane.example>',
  configurationSet: 'receipts',
  email: sesEmail,
  sms: snsSms,
  now: () => new Date(),
  ...over,
});

async function merchant(receipts: { email: boolean; sms: boolean }, name = 'Acme Coffee'): Promise<string> {
  const created = await createMerchant({ db: dynamo(), tableName: table }, { name }, { receipts }, TEST_BY);
  return created.merchantId;
}

/** The event item the writer puts in the change's transaction (until it lands, written here the same way). */
async function writeEvent(merchantId: string, type: EventType, object: ApiPaymentOrder | ApiRefund): Promise<string> {
  const now = new Date();
  const event: PlatformEvent = {
    id: newEventId(now),
    object: 'event',
    type,
    created_at: now.toISOString(),
    api_version: API_VERSION,
    livemode: false,
    data: { object: { ...(object as unknown as Record<string, unknown>), id: object.id, object: object.object, version: 2 } },
    request: null,
  };
  await dynamo().send(new PutCommand({ TableName: table, Item: eventItem(merchantId, event) }));
  return event.id;
}

let seq = 0;
const sqsEvent = (...messages: { event_id: string; merchant_id: string }[]): SQSEvent =>
  ({ Records: messages.map((m) => ({ messageId: `m${++seq}`, body: JSON.stringify(m), attributes: { ApproximateReceiveCount: '1' } })) }) as unknown as SQSEvent;

/** The outbox files of one event's receipts, by the recipient the local SES / SNS recorded. */
const filesFor = (to: string) => ({
  eml: ses.ses.sent.filter((m) => m.to.includes(to)),
  sms: sns.sns.sent.filter((m) => m.to === to),
});

function decodedEml(file: string): string {
  const eml = outbox.read(file.split('/').pop()!);
  const bodies = [...eml.matchAll(/Content-Transfer-Encoding: base64\r\n\r\n([A-Za-z0-9+/=\r\n]+)/g)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64').toString('utf8'));
  const subject = /^Subject: (.*(?:\r\n .*)*)/m.exec(eml)![1]!.replace(/=\?UTF-8\?B\?([^?]+)\?=\s*/g, (_m, b: string) => Buffer.from(b, 'base64').toString('utf8'));
  return [subject, ...bodies].join('\n');
}

const unique = () => `${newId('p').slice(2, 12).toLowerCase()}@example.com`;
const uniquePhone = () => `+86138${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;

describe('order.succeeded', () => {
  it('sends one email and one SMS in the payer’s language, even when the message arrives twice at once and again later', async () => {
    // Prepare
    const merchantId = await merchant({ email: true, sms: true }, '示例咖啡');
    const c = paymentCase(table, merchantId, sandboxes.sandbox);
    const email = unique();
    const phone = uniquePhone();
    const order = await c.order({ amount: 2500, currency: 'USD', payer: { email, phone, locale: 'zh-CN' } });
    const paid = await c.service.confirm(c.caller(), order.id, card(CARDS.success));
    const eventId = await writeEvent(merchantId, 'order.succeeded', paid);
    const message = { event_id: eventId, merchant_id: merchantId };
    const logs = vi.spyOn(process.stdout, 'write');
    // Act: a duplicate in the same batch, then a redelivery.
    const first = await sendReceipts(sqsEvent(message, message), deps());
    const again = await sendReceipts(sqsEvent(message), deps());
    // Assess
    expect(first.batchItemFailures).toEqual([]);
    expect(again.batchItemFailures).toEqual([]);
    const { eml } = filesFor(email);
    expect(eml).toHaveLength(1);
    expect(filesFor(phone).sms).toHaveLength(1);
    const text = decodedEml(eml[0]!.file);
    expect(text).toContain('示例咖啡 付款凭证：US$25.00');
    expect(text).toContain('您已向 示例咖啡 成功付款 US$25.00。');
    expect(text).toContain(`订单号: ${order.merchant_order_no}`);
    expect(eml[0]).toMatchObject({ from: 'receipts@payplane.example', configurationSet: 'receipts' });
    const smsFile = JSON.parse(outbox.read(filesFor(phone).sms[0]!.file.split('/').pop()!));
    expect(smsFile).toMatchObject({ to: phone, body: `【Payplane】您已向示例咖啡付款US$25.00（订单号 ${order.merchant_order_no}）。`, sms_type: 'Transactional' });
    // The claims say sent, with the providers' message ids.
    const claims = new ReceiptClaims(table);
    expect(await claims.get(eventId, 'email')).toMatchObject({ status: 'sent', attempts: 1, message_id: eml[0]!.messageId });
    expect(await claims.get(eventId, 'sms')).toMatchObject({ status: 'sent', attempts: 1, message_id: filesFor(phone).sms[0]!.messageId });
    // Never logged: the payer's address and number.
    const logged = logs.mock.calls.map(([chunk]) => String(chunk)).join('');
    expect(logged).toContain(eventId);
    expect(logged).not.toContain(email);
    expect(logged).not.toContain(phone);
  });

  it('defaults to English, and formats JPY with no decimals', async () => {
    const merchantId = await merchant({ email: true, sms: false });
    const c = paymentCase(table, merchantId, sandboxes.sandbox);
    const email = unique();
    const order = await c.order({ amount: 5000, currency: 'JPY', payer: { email } });
    const paid = await c.service.confirm(c.caller(), order.id, card(CARDS.success));
    await sendReceipts(sqsEvent({ event_id: await writeEvent(merchantId, 'order.succeeded', paid), merchant_id: merchantId }), deps());
    const text = decodedEml(filesFor(email).eml[0]!.file);
    expect(text).toContain('Your receipt from Acme Coffee: ¥5,000');
    expect(text).toContain('You paid ¥5,000 to Acme Coffee.');
  });

  it('sends nothing on a channel the merchant left off, or without the contact', async () => {
    // Prepare: email only; the payer has a phone but no email.
    const merchantId = await merchant({ email: true, sms: false });
    const c = paymentCase(table, merchantId, sandboxes.sandbox);
    const phone = uniquePhone();
    const order = await c.order({ payer: { phone } });
    const paid = await c.service.confirm(c.caller(), order.id, card(CARDS.success));
    const eventId = await writeEvent(merchantId, 'order.succeeded', paid);
    const sentBefore = ses.ses.sent.length;
    // Act
    const result = await sendReceipts(sqsEvent({ event_id: eventId, merchant_id: merchantId }), deps());
    // Assess
    expect(result.batchItemFailures).toEqual([]);
    expect(ses.ses.sent.length).toBe(sentBefore);
    expect(filesFor(phone).sms).toHaveLength(0);
    expect(await new ReceiptClaims(table).get(eventId, 'email')).toBeUndefined();
  });

  it('sends nothing for a merchant with receipts off (the default)', async () => {
    const created = await createMerchant({ db: dynamo(), tableName: table }, { name: 'Quiet' }, {}, TEST_BY);
    const c = paymentCase(table, created.merchantId, sandboxes.sandbox);
    const email = unique();
    const order = await c.order({ payer: { email, phone: uniquePhone() } });
    const paid = await c.service.confirm(c.caller(), order.id, card(CARDS.success));
    await sendReceipts(sqsEvent({ event_id: await writeEvent(created.merchantId, 'order.succeeded', paid), merchant_id: created.merchantId }), deps());
    expect(filesFor(email).eml).toHaveLength(0);
  });
});

describe('failures and retries', () => {
  it('a failed email fails the message; the retry sends the email once and not the SMS again', async () => {
    // Prepare
    const merchantId = await merchant({ email: true, sms: true });
    const c = paymentCase(table, merchantId, sandboxes.sandbox);
    const email = unique();
    const phone = uniquePhone();
    const order = await c.order({ payer: { email, phone } });
    const paid = await c.service.confirm(c.caller(), order.id, card(CARDS.success));
    const message = { event_id: await writeEvent(merchantId, 'order.succeeded', paid), merchant_id: merchantId };
    // SES refuses once (a throttle, say), then accepts.
    let calls = 0;
    const flaky: ReceiptsDeps['email'] = {
      send: async (...args) => {
        if (++calls === 1) throw Object.assign(new Error(`Throttled while sending to ${email}`), { name: 'TooManyRequestsException' });
        return sesEmail.send(...args);
      },
    };
    // Act
    const failed = await sendReceipts(sqsEvent(message), deps({ email: flaky }));
    const retried = await sendReceipts(sqsEvent(message), deps({ email: flaky }));
    // Assess
    expect(failed.batchItemFailures).toHaveLength(1);
    expect(retried.batchItemFailures).toEqual([]);
    expect(filesFor(email).eml).toHaveLength(1);
    expect(filesFor(phone).sms).toHaveLength(1);
    const claim = await new ReceiptClaims(table).get(message.event_id, 'email');
    expect(claim).toMatchObject({ status: 'sent', attempts: 2 });
    // The provider's error is kept without the address it named.
    expect(claim?.last_error).toBe('TooManyRequestsException: Throttled while sending to [redacted]');
  });

  it('a claim left "sending" by a run that died is taken over once its lease has passed, and not before', async () => {
    // Prepare: a run claimed the email and died before sending.
    const merchantId = await merchant({ email: true, sms: false });
    const c = paymentCase(table, merchantId, sandboxes.sandbox);
    const email = unique();
    const order = await c.order({ payer: { email } });
    const paid = await c.service.confirm(c.caller(), order.id, card(CARDS.success));
    const message = { event_id: await writeEvent(merchantId, 'order.succeeded', paid), merchant_id: merchantId };
    const claimedAt = new Date();
    expect(await new ReceiptClaims(table).claim(message.event_id, merchantId, 'email', claimedAt)).toMatchObject({ claimed: true });
    // Act: a delivery within the lease, then one after it.
    await sendReceipts(sqsEvent(message), deps({ now: () => new Date(claimedAt.getTime() + 1000) }));
    const within = filesFor(email).eml.length;
    await sendReceipts(sqsEvent(message), deps({ now: () => new Date(claimedAt.getTime() + (CLAIM_LEASE_SECONDS + 1) * 1000) }));
    // Assess
    expect(within).toBe(0);
    expect(filesFor(email).eml).toHaveLength(1);
  });

  it('a malformed message fails (to the DLQ after its receives); an unknown event is dropped', async () => {
    const malformed = { Records: [{ messageId: 'bad', body: '{"event_id":"nope"}' }] } as unknown as SQSEvent;
    expect((await sendReceipts(malformed, deps())).batchItemFailures).toEqual([{ itemIdentifier: 'bad' }]);
    expect((await sendReceipts(sqsEvent({ event_id: 'evt_missing', merchant_id: 'mch_missing' }), deps())).batchItemFailures).toEqual([]);
  });
});

describe('refund.succeeded', () => {
  it('sends a refund receipt with the refund’s amount, once', async () => {
    // Prepare
    const merchantId = await merchant({ email: true, sms: true });
    const c = paymentCase(table, merchantId, sandboxes.sandbox);
    const email = unique();
    const phone = uniquePhone();
    const order = await c.order({ amount: 1234, currency: 'KWD', payer: { email, phone, locale: 'en' } });
    await c.service.confirm(c.caller(), order.id, card(CARDS.success));
    const refund = await c.service.refund(c.caller(), { order_id: order.id, amount: 234 });
    const message = { event_id: await writeEvent(merchantId, 'refund.succeeded', { ...refund, status: 'succeeded' }), merchant_id: merchantId };
    // Act
    await sendReceipts(sqsEvent(message, message), deps());
    await sendReceipts(sqsEvent(message), deps());
    // Assess
    expect(filesFor(email).eml).toHaveLength(1);
    expect(filesFor(phone).sms).toHaveLength(1);
    const text = decodedEml(filesFor(email).eml[0]!.file).replace(/\u00a0/g, ' ');
    expect(text).toContain('Refund from Acme Coffee: KWD 0.234');
    expect(text).toContain(`Refund: ${refund.id}`);
  });
});
