import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import { Secret } from '../../functions/commons/secret';
import type { AuthorizeRequest, ChannelEvent } from '../../functions/channels/channel';
import { ChannelRejectedError, ChannelTimeoutError } from '../../functions/channels/errors';
import { channel, resetChannels, useChannel } from '../../functions/channels/index';
import { SandboxChannel } from '../../functions/channels/sandbox';
import { kms, resetSandboxClients } from '../../functions/channels/sandbox/aws';
import { SandboxBank } from '../../functions/channels/sandbox/bank';
import { deliverSandboxCallbacks, resetNotifier } from '../../functions/channels/sandbox/notifier';
import { SqsCallbackQueue } from '../../functions/channels/sandbox/queue';
import { HmacSigner, KmsMacSigner } from '../../functions/channels/sandbox/signer';
import { TradeStore } from '../../functions/channels/sandbox/store';
import { TEST_CARDS } from '../../functions/channels/sandbox/test-cards';
import { startKms, type KmsEndpoint } from '../../local/kms';
import { startSqs, type SqsEndpoint } from '../../local/sqs';
import { LocalStack } from '../../local/template';
import { useLocalServices } from './env';

/**
 * The sandbox channel as deployed, built from the environment by the registry: its trades in the
 * template's main table (DynamoDB Local), its callback queue in the local SQS, notifications signed and
 * verified with a KMS HMAC_256 key (local KMS). The notifier's deliveries go to a real HTTP server that
 * verifies them with the channel. The pump below does what the Lambda SQS event source mapping does.
 *
 * The queue and the signing key come from a small template of their own until the stack declares them.
 */
let table: string;
let sqsEndpoint: SqsEndpoint;
let kmsEndpoint: KmsEndpoint;
let sqs: SQSClient;
let queueUrl: string;
let sandbox: SandboxChannel;

// ---- the platform's notify endpoint ---------------------------------------------------------------
let server: Server;
let notifyUrl: string;
const received: ChannelEvent[] = [];
const rawBodies: string[] = [];
/** How many of the next notifications the "platform" refuses (answers `fail`). */
let refuseNext = 0;

beforeAll(async () => {
  table = useLocalServices().tables.main;
  const stack = new LocalStack(
    {
      Resources: {
        SandboxCallbacks: { Type: 'AWS::SQS::Queue', Properties: { VisibilityTimeout: 1 } },
        SandboxSigningKey: { Type: 'AWS::KMS::Key', Properties: { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' } },
      },
    },
    { stackName: 'Payplane-channels' },
  );
  [sqsEndpoint, kmsEndpoint] = await Promise.all([startSqs(stack), startKms(stack, { inMemory: true })]);
  queueUrl = sqsEndpoint.queueUrls.SandboxCallbacks!;
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_SQS: sqsEndpoint.url,
    // Only the sandbox's signing key is used through KMS in this file.
    AWS_ENDPOINT_URL_KMS: kmsEndpoint.url,
    SANDBOX_CALLBACK_QUEUE_URL: queueUrl,
    SANDBOX_SIGNING_KEY_ARN: stack.kmsKeyArn('SandboxSigningKey'),
    SANDBOX_CALLBACK_DELAY_SECONDS: '0',
  });
  resetSandboxClients();
  resetNotifier();
  resetChannels();
  sqs = new SQSClient({});

  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      let ok = false;
      try {
        const event = await sandbox.parseNotification(req.headers as Record<string, string>, body);
        rawBodies.push(body.toString('utf8'));
        if (refuseNext > 0) refuseNext--;
        else {
          received.push(event);
          ok = true;
        }
      } catch {
        ok = false;
      }
      const ack = sandbox.notificationAck(ok);
      res.writeHead(ack.statusCode, ack.headers).end(ack.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  notifyUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/channels/sandbox/notify`;

  sandbox = channel('sandbox') as SandboxChannel;
});

afterAll(async () => {
  sqs?.destroy();
  resetSandboxClients();
  resetChannels();
  await new Promise((resolve) => server?.close(resolve));
  await sqsEndpoint?.stop();
  await kmsEndpoint?.stop();
});

/** One poll of the queue handed to the notifier as an SQS event; deletes what it delivered (the event source mapping's job). */
async function pump(waitSeconds = 1): Promise<{ delivered: number; failed: number }> {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }),
  );
  if (Messages.length === 0) return { delivered: 0, failed: 0 };
  const event: SQSEvent = {
    Records: Messages.map((m) => ({
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body!,
      attributes: { ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1' },
    })) as SQSEvent['Records'],
  };
  const { batchItemFailures } = await deliverSandboxCallbacks(event); // as the Lambda runs it: everything from the environment
  const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
  for (const m of Messages) {
    if (!failed.has(m.MessageId!)) await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }));
  }
  return { delivered: Messages.length - failed.size, failed: failed.size };
}

/** Delivers whatever earlier tests left on the queue, so a test can count its own deliveries. */
async function drain(): Promise<void> {
  for (;;) {
    const { delivered, failed } = await pump(0);
    if (delivered + failed === 0) return;
  }
}

/** Pumps until the platform has received an event for `paymentId` (or gives up). */
async function eventFor(paymentId: string, timeoutMs = 10_000): Promise<ChannelEvent> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const event = received.find((e) => e.paymentId === paymentId);
    if (event) return event;
    await pump();
  }
  throw new Error(`no notification for ${paymentId} within ${timeoutMs} ms`);
}

const card = (number: string, over: Partial<{ exp_month: number; exp_year: number; cvc: string }> = {}) =>
  ({ type: 'card', card: new Secret({ number, exp_month: 12, exp_year: 2034, cvc: '123', ...over }) }) as const;

const attempt = (method: AuthorizeRequest['method'], over: Partial<AuthorizeRequest> = {}): AuthorizeRequest => ({
  paymentId: newId('pay'),
  amount: 1000,
  currency: 'USD',
  capture: true,
  method,
  notifyUrl,
  ...over,
});

async function tradeItems(paymentId: string) {
  const { Items = [] } = await dynamo().send(
    new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `SANDBOX#${paymentId}` } }),
  );
  return Items;
}

describe('every test card', () => {
  it.each([
    ['4242424242424242', { status: 'succeeded' }, 'succeeded'],
    ['4000000000000002', { status: 'failed', declineCode: 'card_declined' }, 'failed'],
    ['4000000000009995', { status: 'failed', declineCode: 'insufficient_funds' }, 'failed'],
    ['4000000000000069', { status: 'failed', declineCode: 'expired_card' }, 'failed'],
    ['4000000000000127', { status: 'failed', declineCode: 'incorrect_cvc' }, 'failed'],
    ['4000000000003220', { status: 'requires_action', action: { type: 'three_d_secure' } }, 'requires_action'],
    // asynchronous: this bank's delay is 0 s, so by the time the platform queries, the bank has decided
    ['4000000000000259', { status: 'processing' }, 'succeeded'],
    ['4000000000000341', { status: 'processing' }, 'failed'],
    ['5555555555554444', { status: 'succeeded' }, 'succeeded'], // any other Luhn-valid number
    ['4242424242424241', { status: 'failed', declineCode: 'incorrect_number' }, 'failed'], // Luhn-invalid
  ] as const)('%s → %o, and query() agrees', async (number, expected, queried) => {
    // Prepare
    const req = attempt(card(number));
    // Act
    const result = await sandbox.authorize(req);
    // Assess
    expect(result).toMatchObject(expected);
    expect(result.channelRef).toMatch(/^SB\d{8}[0-9A-Za-z]{20}$/);
    if (result.status === 'failed') expect(result.message).toBeTruthy();
    await expect(sandbox.query(req.paymentId)).resolves.toMatchObject({ paymentId: req.paymentId, channelRef: result.channelRef, status: queried, amount: 1000 });
  });

  it('an expiry in the past is expired_card, whatever the number', async () => {
    const result = await sandbox.authorize(attempt(card('4242424242424242', { exp_month: 1, exp_year: 2020 })));
    expect(result).toMatchObject({ status: 'failed', declineCode: 'expired_card' });
  });

  it('manual capture: the success card authorizes only', async () => {
    const req = attempt(card('4242424242424242'), { capture: false });
    await expect(sandbox.authorize(req)).resolves.toMatchObject({ status: 'requires_capture' });
    await expect(sandbox.query(req.paymentId)).resolves.toMatchObject({ amountAuthorized: 1000, amountCaptured: 0 });
  });

  it('the table shows no test card number anywhere, only brand and last 4', async () => {
    for (const { number } of TEST_CARDS) await sandbox.authorize(attempt(card(number))).catch(() => undefined);
    const { Items = [] } = await dynamo().send(new ScanCommand({ TableName: table }));
    const dump = JSON.stringify(Items);
    for (const { number } of TEST_CARDS) expect(dump).not.toContain(number);
    expect(Items.find((i) => i.type === 'sandbox_trade' && i.card_last4 === '4242')).toMatchObject({ card_brand: 'visa' });
  });

  it('query() knows nothing of an attempt it never saw', async () => {
    await expect(sandbox.query(newId('pay'))).resolves.toBeUndefined();
  });
});

describe('3-D Secure', () => {
  it('approve: the attempt completes as the capture mode says', async () => {
    const req = attempt(card('4000000000003220'), { capture: false });
    const first = await sandbox.authorize(req);
    const done = await sandbox.completeAction(req.paymentId, first.action!.challengeId, 'approve');
    expect(done).toEqual({ status: 'requires_capture', channelRef: first.channelRef });
    // A repeated completion (e.g. a double-clicked challenge page) gets the first decision, even if it says otherwise.
    await expect(sandbox.completeAction(req.paymentId, first.action!.challengeId, 'fail')).resolves.toEqual(done);
  });

  it('fail: the attempt fails with authentication_failed', async () => {
    const req = attempt(card('4000000000003220'));
    const first = await sandbox.authorize(req);
    await expect(sandbox.completeAction(req.paymentId, first.action!.challengeId, 'fail')).resolves.toMatchObject({
      status: 'failed',
      declineCode: 'authentication_failed',
    });
    await expect(sandbox.query(req.paymentId)).resolves.toMatchObject({ status: 'failed', declineCode: 'authentication_failed' });
  });

  it('refuses a challenge id that is not the attempt’s', async () => {
    const req = attempt(card('4000000000003220'));
    await sandbox.authorize(req);
    await expect(sandbox.completeAction(req.paymentId, 'chl_forged', 'approve')).rejects.toMatchObject({ name: 'ChannelRejectedError', code: 'invalid_challenge' });
  });
});

describe('capture, refund, void', () => {
  it('captures part of an authorization, then refunds within the capture, idempotently', async () => {
    // Prepare
    const req = attempt(card('4242424242424242'), { capture: false, amount: 1000, currency: 'JPY' });
    const { channelRef } = await sandbox.authorize(req);
    // Act + Assess: partial capture, the rest released; a repeat is the same answer; another amount is refused
    await expect(sandbox.capture(channelRef, 600)).resolves.toEqual({ status: 'succeeded', amountCaptured: 600, amountReleased: 400 });
    await expect(sandbox.capture(channelRef, 600)).resolves.toEqual({ status: 'succeeded', amountCaptured: 600, amountReleased: 400 });
    await expect(sandbox.capture(channelRef, 700)).rejects.toMatchObject({ code: 'invalid_payment_state' });
    // refunds: idempotent per refundId, never above the capture
    const r1 = await sandbox.refund(channelRef, 're_a', 200);
    expect(r1).toMatchObject({ status: 'succeeded', amount: 200 });
    await expect(sandbox.refund(channelRef, 're_a', 200)).resolves.toEqual(r1);
    await expect(sandbox.refund(channelRef, 're_a', 300)).rejects.toMatchObject({ code: 'id_reused' });
    await expect(sandbox.refund(channelRef, 're_b', 401)).rejects.toMatchObject({ code: 'amount_too_large', status: 409 });
    await expect(sandbox.refund(channelRef, 're_b', 400)).resolves.toMatchObject({ status: 'succeeded', amount: 400 });
    await expect(sandbox.refund(channelRef, 're_c', 1)).rejects.toBeInstanceOf(ChannelRejectedError);
    // the channel's truth
    const truth = await sandbox.query(req.paymentId);
    expect(truth).toMatchObject({ status: 'succeeded', amountAuthorized: 1000, amountCaptured: 600, amountRefunded: 600, currency: 'JPY' });
    expect(truth?.refunds.map((r) => [r.refundId, r.amount])).toEqual([
      ['re_a', 200],
      ['re_b', 400],
    ]);
  });

  it('refuses to capture more than authorized, or an automatic capture again', async () => {
    const manual = await sandbox.authorize(attempt(card('4242424242424242'), { capture: false }));
    await expect(sandbox.capture(manual.channelRef, 1001)).rejects.toMatchObject({ code: 'amount_too_large' });
    const auto = await sandbox.authorize(attempt(card('4242424242424242')));
    await expect(sandbox.capture(auto.channelRef, 1000)).rejects.toMatchObject({ code: 'invalid_payment_state' });
    await expect(sandbox.capture('SB20300101nosuchtrade00000000', 1)).rejects.toMatchObject({ code: 'no_such_payment' });
  });

  it('50 concurrent refunds of 1 on a capture of 10: exactly 10 succeed', async () => {
    const { channelRef } = await sandbox.authorize(attempt(card('4242424242424242'), { amount: 10 }));
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => sandbox.refund(channelRef, `re_${i}`, 1)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'amount_too_large' });
  });

  it('voids an authorization: released in full, idempotent, and no capture after it', async () => {
    const req = attempt(card('4242424242424242'), { capture: false });
    const { channelRef } = await sandbox.authorize(req);
    await expect(sandbox.void(channelRef)).resolves.toEqual({ status: 'canceled', amountReleased: 1000 });
    await expect(sandbox.void(channelRef)).resolves.toEqual({ status: 'canceled', amountReleased: 1000 });
    await expect(sandbox.capture(channelRef, 1000)).rejects.toMatchObject({ code: 'invalid_payment_state' });
    await expect(sandbox.query(req.paymentId)).resolves.toMatchObject({ status: 'canceled' });
  });

  it('refuses to void a captured payment', async () => {
    const { channelRef } = await sandbox.authorize(attempt(card('4242424242424242')));
    await expect(sandbox.void(channelRef)).rejects.toMatchObject({ code: 'invalid_payment_state' });
  });
});

describe('idempotency on paymentId', () => {
  it('a duplicate authorize returns the same result without a second authorization, even concurrently', async () => {
    const req = attempt(card('4242424242424242'));
    const results = await Promise.all(Array.from({ length: 8 }, () => sandbox.authorize(req)));
    expect(new Set(results.map((r) => r.channelRef)).size).toBe(1);
    expect(results.every((r) => r.status === 'succeeded')).toBe(true);
    expect(await tradeItems(req.paymentId)).toHaveLength(1);
    await expect(sandbox.query(req.paymentId)).resolves.toMatchObject({ amountCaptured: 1000, sequence: 1 });
  });

  it('a duplicate of a decline is the same decline', async () => {
    const req = attempt(card('4000000000009995'));
    const first = await sandbox.authorize(req);
    await expect(sandbox.authorize(req)).resolves.toEqual(first);
  });

  it('the same paymentId with other parameters is refused', async () => {
    const req = attempt(card('4242424242424242'));
    await sandbox.authorize(req);
    await expect(sandbox.authorize({ ...req, amount: 999 })).rejects.toMatchObject({ name: 'ChannelRejectedError', code: 'id_reused' });
    await expect(sandbox.authorize({ ...req, method: card('5555555555554444') })).rejects.toMatchObject({ code: 'id_reused' });
  });
});

describe('the timeout card (4000000000000119)', () => {
  it('throws a retryable timeout, yet query() finds the authorization, and a retry does not charge twice', async () => {
    // Prepare
    const req = attempt(card('4000000000000119'));
    // Act
    const error = await sandbox.authorize(req).catch((e: unknown) => e);
    // Assess: no answer, outcome unknown…
    expect(error).toBeInstanceOf(ChannelTimeoutError);
    expect(error).toMatchObject({ retryable: true, outcomeUnknown: true, status: 503, expose: false });
    // …but the channel did authorize (and capture): the platform's query finds it
    const truth = await sandbox.query(req.paymentId);
    expect(truth).toMatchObject({ status: 'succeeded', amountCaptured: 1000 });
    // a retry with the same paymentId gets the recorded answer, on the same trade
    await expect(sandbox.authorize(req)).resolves.toEqual({ status: 'succeeded', channelRef: truth!.channelRef });
    expect(await tradeItems(req.paymentId)).toHaveLength(1);
    // and the channel also notifies the result it reached
    await expect(eventFor(req.paymentId)).resolves.toMatchObject({ status: 'succeeded', channelRef: truth!.channelRef });
  });
});

describe('asynchronous results through the callback queue', () => {
  beforeEach(drain);

  it.each([
    ['4000000000000259', true, { status: 'succeeded' }],
    ['4000000000000259', false, { status: 'requires_capture' }],
    ['4000000000000341', true, { status: 'failed', declineCode: 'card_declined' }],
  ] as const)('%s (capture %s): processing, then a signed notification the platform verifies', async (number, capture, expected) => {
    // Prepare
    const req = attempt(card(number), { capture });
    // Act
    const result = await sandbox.authorize(req);
    const event = await eventFor(req.paymentId);
    // Assess
    expect(result.status).toBe('processing');
    expect(event).toMatchObject({ ...expected, paymentId: req.paymentId, channelRef: result.channelRef, amount: 1000, currency: 'USD', sequence: 2 });
    expect(event.eventId).toBe(`ntf_${result.channelRef}_2`);
    expect(Date.parse(event.occurredAt)).toBeGreaterThan(0);
    await expect(sandbox.query(req.paymentId)).resolves.toMatchObject({ status: expected.status, sequence: 2 });
  });

  it('wallet: processing, then success by callback', async () => {
    const req = attempt({ type: 'wallet' });
    await expect(sandbox.authorize(req)).resolves.toMatchObject({ status: 'processing' });
    await expect(eventFor(req.paymentId)).resolves.toMatchObject({ status: 'succeeded', amount: 1000 });
  });

  it('redelivers until the platform answers success; the redelivery has the same eventId', async () => {
    // Prepare: the platform refuses the first delivery
    const req = attempt(card('4000000000000259'));
    await sandbox.authorize(req);
    refuseNext = 1;
    const before = rawBodies.length;
    // Act
    const first = await pump();
    const event = await eventFor(req.paymentId); // after the 1 s visibility timeout SQS delivers again
    // Assess
    expect(first).toEqual({ delivered: 0, failed: 1 });
    const bodies = rawBodies.slice(before).map((b) => new URLSearchParams(b));
    expect(bodies.length).toBeGreaterThanOrEqual(2);
    expect(new Set(bodies.map((b) => b.get('notify_id')))).toEqual(new Set([event.eventId]));
    expect(new Set(bodies.map((b) => b.get('sign'))).size).toBe(bodies.length); // re-signed: a fresh notify_time each time
  });

  it('honours the delay: the job is not visible before DelaySeconds', async () => {
    const slow = new SandboxChannel({
      bank: new SandboxBank({ store: new TradeStore(), queue: new SqsCallbackQueue(), callbackDelaySeconds: () => 2 }),
      signer: new KmsMacSigner(() => process.env.SANDBOX_SIGNING_KEY_ARN!, kms),
    });
    const req = attempt({ type: 'wallet' });
    await slow.authorize(req);
    expect(await pump(0)).toEqual({ delivered: 0, failed: 0 });
    await expect(slow.query(req.paymentId)).resolves.toMatchObject({ status: 'processing' });
    await expect(eventFor(req.paymentId)).resolves.toMatchObject({ status: 'succeeded' });
  });
});

describe('the registry', () => {
  it('returns one configured sandbox channel per cold start, takes a test double, and refuses unknown ids', () => {
    expect(channel('sandbox')).toBe(sandbox);
    expect(() => channel('alipay')).toThrow(/No payment channel 'alipay'/);
    const double = new SandboxChannel({ bank: new SandboxBank({ store: new TradeStore(), queue: new SqsCallbackQueue() }), signer: new HmacSigner(randomBytes(32)) });
    useChannel(double);
    expect(channel('sandbox')).toBe(double);
    resetChannels();
    expect(channel('sandbox')).toBeInstanceOf(SandboxChannel);
    expect(channel('sandbox')).not.toBe(double);
  });
});
