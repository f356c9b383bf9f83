import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, PutItemCommand, ScanCommand, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import {
  BatchEntryIdsNotDistinct,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  MessageNotInflight,
  PurgeQueueCommand,
  QueueDoesNotExist,
  ReceiptHandleIsInvalid,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  TooManyEntriesInBatchRequest,
  UnsupportedOperation,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../local/cloud';
import { compilePattern, matchesPattern } from '../../local/event-patterns';
import { batchItemFailures } from '../../local/event-sources';
import { LocalSqs, md5OfMessageAttributes, startSqs, VISIBILITY_FLOOR_MS, type SqsEndpoint, type SqsStats } from '../../local/sqs';
import { LocalStack, type CfnTemplate } from '../../local/template';

/**
 * The local SQS through the real @aws-sdk/client-sqs (AWS JSON 1.0), and Lambda event source mappings
 * (SQS queues and a DynamoDB stream → a fixture function) in a running local cloud.
 */

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const getAtt = (id: string, attribute: string) => ({ 'Fn::GetAtt': [id, attribute] });

const template: CfnTemplate = {
  Resources: {
    Jobs: { Type: 'AWS::SQS::Queue', Properties: {} },
    Delayed: { Type: 'AWS::SQS::Queue', Properties: { DelaySeconds: 1 } },
    Visibility: { Type: 'AWS::SQS::Queue', Properties: { VisibilityTimeout: 1 } },
    Batch: { Type: 'AWS::SQS::Queue', Properties: {} },
    Retry: { Type: 'AWS::SQS::Queue', Properties: { RedrivePolicy: { deadLetterTargetArn: getAtt('RetryDlq', 'Arn'), maxReceiveCount: 2 } } },
    RetryDlq: { Type: 'AWS::SQS::Queue', Properties: { MessageRetentionPeriod: 1_209_600 } },
    Orders: { Type: 'AWS::SQS::Queue', Properties: { FifoQueue: true, ContentBasedDeduplication: true } },
    Named: { Type: 'AWS::SQS::Queue', Properties: { QueueName: 'payplane-named', VisibilityTimeout: 45, ReceiveMessageWaitTimeSeconds: 2 } },
  },
};
const stack = new LocalStack(structuredClone(template), { stackName: 'Payplane-sqs' });

let endpoint: SqsEndpoint;
let sqs: SQSClient;
const url = (logicalId: string) => String(stack.resolve({ Ref: logicalId }));
const count = async (logicalId: string) =>
  (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url(logicalId), AttributeNames: ['All'] }))).Attributes!;

beforeAll(async () => {
  endpoint = await startSqs(stack);
  sqs = new SQSClient({ endpoint: endpoint.url, region: 'us-east-1', credentials });
});
afterAll(async () => {
  sqs?.destroy();
  await endpoint?.stop();
});

describe('local SQS: queues from the template', () => {
  it('resolves Ref / GetAtt of a queue to the local endpoint (an AWS-looking loopback URL before it listens)', () => {
    // Prepare
    const idle = new LocalStack(structuredClone(template), { stackName: 'Payplane-sqs' });
    // Assess
    expect(idle.resolve({ Ref: 'Jobs' })).toBe('http://sqs.us-east-1.localhost/000000000000/Payplane-sqs-Jobs');
    expect(url('Jobs')).toBe(`${endpoint.url}/000000000000/Payplane-sqs-Jobs`);
    expect(stack.resolve(getAtt('Jobs', 'QueueUrl'))).toBe(url('Jobs'));
    expect(stack.resolve(getAtt('Jobs', 'Arn'))).toBe('arn:aws:sqs:us-east-1:000000000000:Payplane-sqs-Jobs');
    expect(stack.resolve(getAtt('Jobs', 'QueueName'))).toBe('Payplane-sqs-Jobs');
    expect(stack.resolve({ 'Fn::Sub': '${Named.QueueName}|${Orders}' })).toBe(`payplane-named|${endpoint.url}/000000000000/Payplane-sqs-Orders.fifo`);
    expect(endpoint.queueUrls.Named).toBe(`${endpoint.url}/000000000000/payplane-named`);
  });

  it('finds queues by name and reports their attributes and depth', async () => {
    // Act
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'payplane-named' }));
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'one' }));
    const attributes = await count('Named');
    const some = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['VisibilityTimeout', 'QueueArn'] }));
    const none = await sqs.send(new GetQueueAttributesCommand({ QueueUrl }));
    // Assess
    expect(QueueUrl).toBe(url('Named'));
    expect(attributes).toMatchObject({
      ApproximateNumberOfMessages: '1',
      ApproximateNumberOfMessagesNotVisible: '0',
      ApproximateNumberOfMessagesDelayed: '0',
      VisibilityTimeout: '45',
      ReceiveMessageWaitTimeSeconds: '2',
      MessageRetentionPeriod: '345600',
      MaximumMessageSize: '262144',
      QueueArn: 'arn:aws:sqs:us-east-1:000000000000:payplane-named',
    });
    expect(some.Attributes).toEqual({ VisibilityTimeout: '45', QueueArn: 'arn:aws:sqs:us-east-1:000000000000:payplane-named' });
    expect(none.Attributes).toBeUndefined();
    expect(JSON.parse((await count('Retry')).RedrivePolicy!)).toEqual({ deadLetterTargetArn: stack.resolve(getAtt('RetryDlq', 'Arn')), maxReceiveCount: 2 });
    expect(await count('Orders')).toMatchObject({ FifoQueue: 'true', ContentBasedDeduplication: 'true' });
  });

  it('counts calls per caller and operation, and empty receives apart', async () => {
    // Prepare
    const standalone = await startSqs(new LocalStack(structuredClone(template), { stackName: 'Payplane-sqs-count' }));
    const client = new SQSClient({ endpoint: standalone.url, region: 'us-east-1', credentials });
    const queue = standalone.queueUrls.Jobs!;
    try {
      // Act
      await client.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'one' }));
      await client.send(new ReceiveMessageCommand({ QueueUrl: queue }));
      await client.send(new ReceiveMessageCommand({ QueueUrl: queue, WaitTimeSeconds: 0 }));
      // Assess: no IAM here, so the caller is the access key id.
      expect(standalone.sqs.stats().callsByCaller).toEqual({ local: { ReceiveMessage: 2, 'ReceiveMessage:empty': 1, SendMessage: 1 } });
    } finally {
      client.destroy();
      await standalone.stop();
    }
  });

  it('fails like SQS: unknown queue, bad parameters, unimplemented operations, the Query protocol', async () => {
    await expect(sqs.send(new GetQueueUrlCommand({ QueueName: 'nope' }))).rejects.toBeInstanceOf(QueueDoesNotExist);
    await expect(sqs.send(new SendMessageCommand({ QueueUrl: `${endpoint.url}/000000000000/nope`, MessageBody: 'x' }))).rejects.toBeInstanceOf(QueueDoesNotExist);
    await expect(sqs.send(new ReceiveMessageCommand({ QueueUrl: url('Jobs'), MaxNumberOfMessages: 11 }))).rejects.toMatchObject({
      name: 'InvalidParameterValue',
      message: 'Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.',
    });
    await expect(sqs.send(new SendMessageCommand({ QueueUrl: url('Jobs'), MessageBody: 'x', DelaySeconds: 901 }))).rejects.toMatchObject({ name: 'InvalidParameterValue' });
    await expect(
      sqs.send(new SendMessageCommand({ QueueUrl: url('Jobs'), MessageBody: 'x', MessageAttributes: { n: { DataType: 'Number', StringValue: 'ten' } } })),
    ).rejects.toMatchObject({ name: 'InvalidParameterValue' });
    await expect(sqs.send(new SendMessageCommand({ QueueUrl: url('Jobs'), MessageBody: 'x'.repeat(262_145) }))).rejects.toMatchObject({
      name: 'InvalidParameterValue',
      message: expect.stringContaining('Message must be shorter than 262144 bytes'),
    });
    await expect(sqs.send(new PurgeQueueCommand({ QueueUrl: url('Jobs') }))).rejects.toBeInstanceOf(UnsupportedOperation);
    const query = await fetch(endpoint.url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'Action=SendMessage&MessageBody=x' });
    expect(query.status).toBe(400);
    expect(query.headers.get('x-amzn-query-error')).toBe('InvalidAction;Sender');
    expect(((await query.json()) as { message: string }).message).toMatch(/JSON protocol only/);
  });
});

describe('local SQS: messages', () => {
  it('sends and receives bodies and message attributes; attributes only when asked for', async () => {
    // Prepare
    const attributes = {
      'order.id': { DataType: 'String', StringValue: 'ord_1' },
      'order.amount': { DataType: 'Number', StringValue: '1999' },
      blob: { DataType: 'Binary.gz', BinaryValue: Buffer.from([0, 1, 254, 255]) },
    };
    // Act
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url('Jobs'), MessageBody: '{"hello":"世界"}', MessageAttributes: attributes }));
    const bare = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('Jobs'), VisibilityTimeout: 0 }));
    const prefixed = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('Jobs'), VisibilityTimeout: 0, MessageAttributeNames: ['order.*'], MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
    const full = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('Jobs'), MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'] }));
    // Assess
    expect(sent.MessageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(sent.MD5OfMessageAttributes).toBe(md5OfMessageAttributes({ ...attributes, blob: { DataType: 'Binary.gz', BinaryValue: Buffer.from([0, 1, 254, 255]).toString('base64') } }));
    expect(bare.Messages![0]).toEqual({ MessageId: sent.MessageId, ReceiptHandle: expect.any(String), MD5OfBody: sent.MD5OfMessageBody, Body: '{"hello":"世界"}' });
    expect(prefixed.Messages![0]!.Attributes).toEqual({ ApproximateReceiveCount: '2' });
    expect(Object.keys(prefixed.Messages![0]!.MessageAttributes!).sort()).toEqual(['order.amount', 'order.id']);
    const m = full.Messages![0]!;
    expect(m.Attributes).toEqual({
      SenderId: 'local',
      SentTimestamp: expect.stringMatching(/^\d{13}$/),
      ApproximateReceiveCount: '3',
      ApproximateFirstReceiveTimestamp: expect.stringMatching(/^\d{13}$/),
    });
    expect(m.MD5OfMessageAttributes).toBe(sent.MD5OfMessageAttributes);
    expect(m.MessageAttributes!['order.amount']).toEqual({ DataType: 'Number', StringValue: '1999' });
    expect(Buffer.from(m.MessageAttributes!.blob!.BinaryValue!)).toEqual(Buffer.from([0, 1, 254, 255]));
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url('Jobs'), ReceiptHandle: m.ReceiptHandle }));
  });

  it('long polling answers as soon as a message arrives, and after WaitTimeSeconds when none does', async () => {
    // Act
    const started = performance.now();
    const polled = sqs.send(new ReceiveMessageCommand({ QueueUrl: url('Jobs'), WaitTimeSeconds: 10 }));
    setTimeout(() => void sqs.send(new SendMessageCommand({ QueueUrl: url('Jobs'), MessageBody: 'wake up' })), 150);
    const got = await polled;
    const wokeAfter = performance.now() - started;
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url('Jobs'), ReceiptHandle: got.Messages![0]!.ReceiptHandle }));
    const emptyStarted = performance.now();
    const empty = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('Jobs'), WaitTimeSeconds: 1 }));
    const emptyAfter = performance.now() - emptyStarted;
    // Assess
    expect(got.Messages![0]!.Body).toBe('wake up');
    expect(wokeAfter).toBeLessThan(1500);
    expect(empty.Messages).toBeUndefined();
    expect(emptyAfter).toBeGreaterThanOrEqual(950);
  });
});

describe.concurrent('local SQS: time', () => {
  it('delays messages: per message (DelaySeconds) and per queue', async ({ expect }) => {
    // Act
    const started = Date.now();
    await sqs.send(new SendMessageCommand({ QueueUrl: url('Batch'), MessageBody: 'later', DelaySeconds: 1 }));
    await sqs.send(new SendMessageCommand({ QueueUrl: url('Delayed'), MessageBody: 'queue delay' }));
    const early = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('Batch') }));
    const delayedCount = (await count('Delayed')).ApproximateNumberOfMessagesDelayed;
    const late = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('Batch'), WaitTimeSeconds: 5 }));
    const lateQueue = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('Delayed'), WaitTimeSeconds: 5 }));
    // Assess
    expect(early.Messages).toBeUndefined();
    expect(delayedCount).toBe('1');
    expect(late.Messages![0]!.Body).toBe('later');
    expect(lateQueue.Messages![0]!.Body).toBe('queue delay');
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
    for (const [q, m] of [['Batch', late], ['Delayed', lateQueue]] as const) {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url(q), ReceiptHandle: m.Messages![0]!.ReceiptHandle }));
    }
  });

  it('hides a received message for the visibility timeout; only the latest receipt handle deletes it', async ({ expect }) => {
    // Prepare
    const q = url('Visibility');
    await sqs.send(new SendMessageCommand({ QueueUrl: q, MessageBody: 'job' }));
    // Act
    const first = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: q, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }))).Messages![0]!;
    const hidden = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q }));
    const inFlight = (await count('Visibility')).ApproximateNumberOfMessagesNotVisible;
    const second = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: q, WaitTimeSeconds: 5, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }))).Messages![0]!;
    await sqs.send(new DeleteMessageCommand({ QueueUrl: q, ReceiptHandle: first.ReceiptHandle })); // outdated: succeeds, deletes nothing
    const stillThere = (await count('Visibility')).ApproximateNumberOfMessagesNotVisible;
    const staleChange = sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: q, ReceiptHandle: first.ReceiptHandle, VisibilityTimeout: 0 }));
    await expect(staleChange).rejects.toMatchObject({ name: 'InvalidParameterValue', message: expect.stringContaining('The receipt handle has expired') });
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: q, ReceiptHandle: second.ReceiptHandle, VisibilityTimeout: 0 }));
    const third = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: q, MessageSystemAttributeNames: ['All'] }))).Messages![0]!;
    await sqs.send(new DeleteMessageCommand({ QueueUrl: q, ReceiptHandle: third.ReceiptHandle }));
    // Assess
    expect(hidden.Messages).toBeUndefined();
    expect(inFlight).toBe('1');
    expect([first, second, third].map((m) => m.Attributes!.ApproximateReceiveCount)).toEqual(['1', '2', '3']);
    expect(new Set([first, second, third].map((m) => m.ReceiptHandle)).size).toBe(3);
    expect(stillThere).toBe('1');
    expect(await count('Visibility')).toMatchObject({ ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' });
    await expect(sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: q, ReceiptHandle: third.ReceiptHandle, VisibilityTimeout: 5 }))).rejects.toBeInstanceOf(MessageNotInflight);
    await expect(sqs.send(new DeleteMessageCommand({ QueueUrl: q, ReceiptHandle: 'not-a-handle' }))).rejects.toBeInstanceOf(ReceiptHandleIsInvalid);
  });
});

describe('local SQS: time scale', () => {
  // WeChat Pay's published retry schedule (issue 9 §3), as a deliverer waits it: hops of at most 900 s.
  const SCHEDULE = [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10_800, 10_800, 10_800, 21_600, 21_600];
  const hops = SCHEDULE.flatMap((wait) => [...Array<number>(Math.floor(wait / 900)).fill(900), ...(wait % 900 ? [wait % 900] : [])]);
  const scaledTemplate: CfnTemplate = {
    Resources: {
      Hops: { Type: 'AWS::SQS::Queue', Properties: { VisibilityTimeout: 3600 } },
      Held: { Type: 'AWS::SQS::Queue', Properties: { VisibilityTimeout: 7200, DelaySeconds: 900 } },
    },
  };
  let scaled: SqsEndpoint;
  let client: SQSClient;
  const scaledStack = new LocalStack(structuredClone(scaledTemplate), { stackName: 'Payplane-scaled' });
  const q = (logicalId: string) => String(scaledStack.resolve({ Ref: logicalId }));
  beforeAll(async () => {
    // 36 000: the 24 h schedule below takes 2.4 s; `npm start -- --time-scale 3600` would take 24 s for it.
    scaled = await startSqs(scaledStack, { timeScale: 36_000 });
    client = new SQSClient({ endpoint: scaled.url, region: 'us-east-1', credentials });
  });
  afterAll(async () => {
    client?.destroy();
    await scaled?.stop();
  });

  it('runs a 24-hour schedule of DelaySeconds hops (≤ 900 s each) in 1/timeScale of the time, and records each requested delay', async () => {
    // Act: the deliverer's loop, one message per hop: receive, then send the next hop with its delay.
    const started = Date.now();
    await client.send(new SendMessageCommand({ QueueUrl: q('Hops'), MessageBody: JSON.stringify({ hop: 0 }), DelaySeconds: hops[0] }));
    for (let i = 1; i <= hops.length; i++) {
      const { Messages = [] } = await client.send(new ReceiveMessageCommand({ QueueUrl: q('Hops'), WaitTimeSeconds: 20 }));
      expect(JSON.parse(Messages[0]!.Body!)).toEqual({ hop: i - 1 });
      await client.send(new DeleteMessageCommand({ QueueUrl: q('Hops'), ReceiptHandle: Messages[0]!.ReceiptHandle }));
      if (i < hops.length) await client.send(new SendMessageCommand({ QueueUrl: q('Hops'), MessageBody: JSON.stringify({ hop: i }), DelaySeconds: hops[i] }));
    }
    const elapsed = Date.now() - started;
    // Assess: the recorded delays are the schedule (what e2e tests assert), and no hop came early.
    const total = hops.reduce((a, b) => a + b, 0);
    expect(total).toBe(86_640); // 24 h 4 min: the waits between the sixteen attempts
    const sent = scaled.sqs.sentTo(scaled.sqs.findQueue('Hops')!);
    expect(sent.map((r) => r.delaySeconds)).toEqual(hops);
    expect(sent.every((r) => r.perMessageDelay)).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual((total * 1000) / 36_000);
  });

  it('scales visibility timeouts (queue, ChangeMessageVisibility) but reports the template values', async () => {
    // Prepare
    await client.send(new SendMessageCommand({ QueueUrl: q('Hops'), MessageBody: 'visible again', DelaySeconds: 0 }));
    // Act
    const first = (await client.send(new ReceiveMessageCommand({ QueueUrl: q('Hops') }))).Messages![0]!;
    const returned = Date.now();
    const second = (await client.send(new ReceiveMessageCommand({ QueueUrl: q('Hops'), WaitTimeSeconds: 20, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }))).Messages![0]!;
    const back = Date.now() - returned;
    await client.send(new ChangeMessageVisibilityCommand({ QueueUrl: q('Hops'), ReceiptHandle: second.ReceiptHandle, VisibilityTimeout: 7200 }));
    const changed = Date.now();
    const third = (await client.send(new ReceiveMessageCommand({ QueueUrl: q('Hops'), WaitTimeSeconds: 20, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }))).Messages![0]!;
    const backAfterChange = Date.now() - changed;
    await client.send(new DeleteMessageCommand({ QueueUrl: q('Hops'), ReceiptHandle: third.ReceiptHandle }));
    const attributes = (await client.send(new GetQueueAttributesCommand({ QueueUrl: q('Hops'), AttributeNames: ['VisibilityTimeout'] }))).Attributes;
    // Assess: 3600 s = 100 ms, 7200 s = 200 ms at 36 000×, each raised to the 250 ms floor (VISIBILITY_FLOOR_MS).
    expect(first.Body).toBe('visible again');
    expect([second, third].map((m) => m.Attributes!.ApproximateReceiveCount)).toEqual(['2', '3']);
    expect(back).toBeGreaterThanOrEqual(VISIBILITY_FLOOR_MS - 10);
    expect(backAfterChange).toBeGreaterThanOrEqual(VISIBILITY_FLOOR_MS - 10);
    expect(attributes).toEqual({ VisibilityTimeout: '3600' });
  });

  it('hold(): a held message stays invisible past its visibility timeout and returns when released', async () => {
    // Prepare: the queue's DelaySeconds 900 (25 ms here) applies and is recorded as the queue's.
    const sqsState = scaled.sqs;
    const queue = sqsState.findQueue('Payplane-scaled-Held')!;
    await client.send(new SendMessageCommand({ QueueUrl: q('Held'), MessageBody: 'held' }));
    const received = (await client.send(new ReceiveMessageCommand({ QueueUrl: q('Held'), WaitTimeSeconds: 20 }))).Messages![0]!;
    // Act
    const release = sqsState.hold(queue, [received.ReceiptHandle!]);
    const whileHeld = await client.send(new ReceiveMessageCommand({ QueueUrl: q('Held'), WaitTimeSeconds: 1 })); // 1 s ≫ its 250 ms visibility
    const inFlight = (await client.send(new GetQueueAttributesCommand({ QueueUrl: q('Held'), AttributeNames: ['ApproximateNumberOfMessagesNotVisible'] }))).Attributes;
    release();
    release(); // idempotent
    const afterRelease = await client.send(new ReceiveMessageCommand({ QueueUrl: q('Held'), WaitTimeSeconds: 20, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
    await client.send(new DeleteMessageCommand({ QueueUrl: q('Held'), ReceiptHandle: afterRelease.Messages![0]!.ReceiptHandle }));
    // Assess
    expect(whileHeld.Messages).toBeUndefined();
    expect(inFlight).toEqual({ ApproximateNumberOfMessagesNotVisible: '1' });
    expect(afterRelease.Messages![0]).toMatchObject({ Body: 'held', Attributes: { ApproximateReceiveCount: '2' } });
    expect(sqsState.sentTo(queue)).toEqual([{ messageId: received.MessageId, body: 'held', delaySeconds: 900, perMessageDelay: false, sentAt: expect.any(String) }]);
  });

  it('refuses a time scale that is not a positive number', () => {
    expect(() => new LocalSqs([], 'http://127.0.0.1:1', '000000000000', 0)).toThrow(/timeScale must be a positive number; got 0/);
  });
});

describe('local SQS: batches, dead letters, FIFO', () => {
  it('sends and deletes in batches, with per-entry failures and batch-level errors', async () => {
    // Prepare
    const q = url('Batch');
    // Act
    const sent = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: q,
        Entries: [
          { Id: 'a', MessageBody: 'one' },
          { Id: 'b', MessageBody: 'two', MessageAttributes: { n: { DataType: 'Number', StringValue: 'NaN?' } } },
          { Id: 'c', MessageBody: 'three' },
        ],
      }),
    );
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q, MaxNumberOfMessages: 10 }));
    const deleted = await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: q,
        Entries: [...received.Messages!.map((m, i) => ({ Id: `m${i}`, ReceiptHandle: m.ReceiptHandle })), { Id: 'bad', ReceiptHandle: 'garbage' }],
      }),
    );
    // Assess
    expect(sent.Successful!.map((s) => s.Id)).toEqual(['a', 'c']);
    expect(sent.Failed).toEqual([{ Id: 'b', SenderFault: true, Code: 'InvalidParameterValue', Message: "Could not cast message attribute 'n' value to number." }]);
    expect(received.Messages!.map((m) => m.Body).sort()).toEqual(['one', 'three']);
    expect(deleted.Successful!.map((s) => s.Id)).toEqual(['m0', 'm1']);
    expect(deleted.Failed).toEqual([expect.objectContaining({ Id: 'bad', Code: 'ReceiptHandleIsInvalid', SenderFault: true })]);
    await expect(sqs.send(new SendMessageBatchCommand({ QueueUrl: q, Entries: [{ Id: 'x', MessageBody: '1' }, { Id: 'x', MessageBody: '2' }] }))).rejects.toBeInstanceOf(
      BatchEntryIdsNotDistinct,
    );
    const eleven = Array.from({ length: 11 }, (_, i) => ({ Id: `e${i}`, MessageBody: 'x' }));
    await expect(sqs.send(new SendMessageBatchCommand({ QueueUrl: q, Entries: eleven }))).rejects.toBeInstanceOf(TooManyEntriesInBatchRequest);
    expect((await count('Batch')).ApproximateNumberOfMessages).toBe('0');
  });

  it('moves a message received maxReceiveCount times to the dead-letter queue on the next receive', async () => {
    // Prepare
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url('Retry'), MessageBody: 'poison', MessageAttributes: { k: { DataType: 'String', StringValue: 'v' } } }));
    // Act
    const receives = [];
    for (let i = 0; i < 3; i++) receives.push(await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('Retry'), VisibilityTimeout: 0 })));
    const dead = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url('RetryDlq'), MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'] }));
    // Assess
    expect(receives.map((r) => r.Messages?.length ?? 0)).toEqual([1, 1, 0]);
    const m = dead.Messages![0]!;
    expect(m).toMatchObject({ MessageId: sent.MessageId, Body: 'poison', MessageAttributes: { k: { StringValue: 'v' } } });
    expect(m.Attributes!.DeadLetterQueueSourceArn).toBe(stack.resolve(getAtt('Retry', 'Arn')));
    expect(endpoint.sqs.stats().queues['Payplane-sqs-Retry']).toMatchObject({ deadLettered: 1, visible: 0 });
  });

  it('FIFO: order within a group, a group waits while one of its messages is in flight, deduplication', async () => {
    // Prepare
    const q = url('Orders');
    const send = (body: string, group: string) => sqs.send(new SendMessageCommand({ QueueUrl: q, MessageBody: body, MessageGroupId: group }));
    // Act
    const a1 = await send('a1', 'A');
    await send('a2', 'A');
    await send('b1', 'B');
    const duplicate = await send('a1', 'A'); // same body: content-based deduplication
    const first = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q, MessageSystemAttributeNames: ['All'] }));
    const whileLocked = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q, MaxNumberOfMessages: 10 }));
    await sqs.send(new DeleteMessageCommand({ QueueUrl: q, ReceiptHandle: first.Messages![0]!.ReceiptHandle }));
    const afterUnlock = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q, MaxNumberOfMessages: 10 }));
    // Assess
    expect(duplicate.MessageId).toBe(a1.MessageId);
    expect(a1.SequenceNumber).toMatch(/^\d{20}$/);
    expect(first.Messages![0]).toMatchObject({ Body: 'a1', Attributes: { MessageGroupId: 'A', SequenceNumber: a1.SequenceNumber, MessageDeduplicationId: expect.any(String) } });
    expect(whileLocked.Messages!.map((m) => m.Body)).toEqual(['b1']);
    expect(afterUnlock.Messages!.map((m) => m.Body)).toEqual(['a2']);
    await expect(sqs.send(new SendMessageCommand({ QueueUrl: q, MessageBody: 'x' }))).rejects.toMatchObject({ name: 'MissingParameter' });
    await expect(sqs.send(new SendMessageCommand({ QueueUrl: q, MessageBody: 'x', MessageGroupId: 'A', DelaySeconds: 5 }))).rejects.toMatchObject({
      name: 'InvalidParameterValue',
    });
  });

  it('keeps messages across a restart in persistent mode', async () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'payplane-sqs-'));
    const stateFile = join(dir, 'messages.json');
    const own = new LocalStack(structuredClone(template), { stackName: 'Payplane-sqs' });
    try {
      const first = await startSqs(own, { stateFile });
      const c1 = new SQSClient({ endpoint: first.url, region: 'us-east-1', credentials });
      await c1.send(new SendMessageCommand({ QueueUrl: first.queueUrls.Jobs, MessageBody: 'kept' }));
      c1.destroy();
      await first.stop();
      // Act
      const second = await startSqs(own, { stateFile });
      const c2 = new SQSClient({ endpoint: second.url, region: 'us-east-1', credentials });
      const got = await c2.send(new ReceiveMessageCommand({ QueueUrl: second.queueUrls.Jobs }));
      c2.destroy();
      await second.stop();
      // Assess
      expect(got.Messages![0]!.Body).toBe('kept');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('partial batch responses (ReportBatchItemFailures)', () => {
  const ok = (payload: unknown) => ({ ok: true as const, payload, requestId: 'r', durationMs: 1 });
  const ids = ['m1', 'm2'];
  it.each([
    ['no response', undefined, false, []],
    ['null batchItemFailures', { batchItemFailures: null }, false, []],
    ['empty batchItemFailures', { batchItemFailures: [] }, false, []],
    ['one failure', { batchItemFailures: [{ itemIdentifier: 'm2' }] }, false, ['m2']],
    ['an empty itemIdentifier', { batchItemFailures: [{ itemIdentifier: '' }] }, true, ids],
    ['a wrong key', { batchItemFailures: [{ messageId: 'm1' }] }, true, ids],
    ['an unknown id', { batchItemFailures: [{ itemIdentifier: 'm9' }] }, true, ids],
  ])('%s', (_name, payload, all, failed) => {
    const out = batchItemFailures(ok(payload), ids, true);
    expect(out.all).toBe(all);
    expect([...out.failed]).toEqual(failed);
  });
  it('ignores the response without ReportBatchItemFailures, and fails the batch on a function error', () => {
    expect(batchItemFailures(ok({ batchItemFailures: [{ itemIdentifier: 'm1' }] }), ids, false).failed.size).toBe(0);
    const error = { ok: false as const, error: { errorType: 'Error', errorMessage: 'boom' }, requestId: 'r', durationMs: 1 };
    expect(batchItemFailures(error, ids, true)).toMatchObject({ all: true, error: 'Error: boom' });
  });
});

describe('FilterCriteria patterns', () => {
  const event = {
    body: { type: 'payment.succeeded', amount: 1999, currency: 'USD', tags: ['a', 'b'], meta: null },
    dynamodb: { NewImage: { status: { S: 'succeeded' }, amount: { N: '1999' } } },
  };
  const matches = (pattern: unknown) => matchesPattern(compilePattern(JSON.stringify(pattern), 'test'), event);
  it.each([
    [{ body: { type: ['payment.succeeded'] } }, true],
    [{ body: { type: ['payment.failed'] } }, false],
    [{ body: { type: [{ prefix: 'payment.' }] } }, true],
    [{ body: { type: [{ suffix: '.failed' }] } }, false],
    [{ body: { currency: [{ 'equals-ignore-case': 'usd' }] } }, true],
    [{ body: { currency: [{ 'anything-but': ['USD', 'EUR'] }] } }, false],
    [{ body: { amount: [{ numeric: ['>', 1000, '<=', 1999] }] } }, true],
    [{ body: { amount: ['1999'] } }, false], // the number 1999 is not the string "1999"
    [{ body: { tags: ['b'] } }, true],
    [{ body: { missing: [{ exists: false }], meta: [null] } }, true],
    [{ body: { type: [{ wildcard: 'payment.*ed' }] } }, true],
    [{ dynamodb: { NewImage: { status: { S: ['succeeded'] }, amount: { N: [{ numeric: ['>=', 1999] }] } } } }, true],
    [{ $or: [{ body: { currency: ['EUR'] } }, { body: { amount: [1999] } }] }, true],
  ])('%j → %s', (pattern, expected) => {
    expect(matches(pattern)).toBe(expected);
  });
  it('refuses what it cannot evaluate instead of letting events through', () => {
    expect(() => compilePattern('{"body": {"ip": [{"cidr": "10.0.0.0/24"}]}}', 'Mapping.FilterCriteria.Filters[0]')).toThrow(/cidr.*not supported/);
    expect(() => compilePattern('{"body": "x"}', 'f')).toThrow(/must be lists or objects/);
    expect(() => compilePattern('not json', 'f')).toThrow(/not JSON/);
  });
});

// ---- event source mappings in a running local cloud -------------------------------------------------

const FIXTURE = join(import.meta.dirname, 'fixtures', 'local-cloud');
const STACK = 'Payplane-esm-fixture';

/** The local-cloud fixture plus queues, a consumer function and its event source mappings, as CDK synthesizes them. */
function esmAssembly(): string {
  const base = JSON.parse(readFileSync(join(FIXTURE, 'Payplane-fixture.template.json'), 'utf8')) as CfnTemplate;
  for (const r of Object.values(base.Resources)) {
    const asset = r.Metadata?.['aws:asset:path'];
    if (typeof asset === 'string') r.Metadata!['aws:asset:path'] = join(FIXTURE, asset);
  }
  const mapping = (queue: string, extra: Record<string, unknown> = {}) => ({
    Type: 'AWS::Lambda::EventSourceMapping',
    Properties: { FunctionName: { Ref: 'ConsumerFunction' }, EventSourceArn: getAtt(queue, 'Arn'), ...extra },
  });
  const redrive = { deadLetterTargetArn: getAtt('DeadLetters', 'Arn'), maxReceiveCount: 2 };
  Object.assign(base.Resources, {
    DeadLetters: { Type: 'AWS::SQS::Queue', Properties: { MessageRetentionPeriod: 1_209_600 } },
    WorkQueue: { Type: 'AWS::SQS::Queue', Properties: { VisibilityTimeout: 2, RedrivePolicy: redrive } },
    StrictQueue: { Type: 'AWS::SQS::Queue', Properties: { VisibilityTimeout: 2, RedrivePolicy: redrive } },
    ManualQueue: { Type: 'AWS::SQS::Queue', Properties: { VisibilityTimeout: 2 } },
    OutQueue: { Type: 'AWS::SQS::Queue', Properties: {} },
    StreamFailures: { Type: 'AWS::SQS::Queue', Properties: {} },
    EventFailures: { Type: 'AWS::SQS::Queue', Properties: {} },
    // Visibility 2 s is 250 ms at the cloud's time scale 10 (200 ms, raised to the floor): shorter than a slow consumer's run.
    SlowQueue: { Type: 'AWS::SQS::Queue', Properties: { VisibilityTimeout: 2, DelaySeconds: 3 } },
    ConsumerFunction: {
      Type: 'AWS::Lambda::Function',
      Properties: {
        Handler: 'index.handler',
        Runtime: 'nodejs22.x',
        Timeout: 2,
        Role: getAtt('ConsumerRole', 'Arn'),
        Environment: { Variables: { TABLE_NAME: { Ref: 'MainTable74195DAB' }, OUT_QUEUE_URL: { Ref: 'OutQueue' } } },
      },
      Metadata: { 'aws:asset:path': join(FIXTURE, 'asset.fixture-consumer') },
    },
    // What CDK grants for the mappings (the pollers read with this role) and the handler's own calls.
    ConsumerRole: { Type: 'AWS::IAM::Role', Properties: { AssumeRolePolicyDocument: { Version: '2012-10-17', Statement: [] } } },
    ConsumerRolePolicy: {
      Type: 'AWS::IAM::Policy',
      Properties: {
        PolicyName: 'ConsumerRolePolicy',
        Roles: [{ Ref: 'ConsumerRole' }],
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Action: ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueUrl', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
              Resource: ['WorkQueue', 'StrictQueue', 'ManualQueue', 'SlowQueue'].map((q) => getAtt(q, 'Arn')),
            },
            { Effect: 'Allow', Action: 'dynamodb:ListStreams', Resource: '*' },
            { Effect: 'Allow', Action: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'], Resource: getAtt('MainTable74195DAB', 'StreamArn') },
            { Effect: 'Allow', Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'], Resource: ['StreamFailures', 'EventFailures'].map((q) => getAtt(q, 'Arn')) },
            { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: getAtt('OutQueue', 'Arn') },
            { Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: getAtt('MainTable74195DAB', 'Arn') },
            {
              Effect: 'Allow',
              Action: 'kms:Decrypt',
              Resource: getAtt('DataKey9C0B3FD2', 'Arn'),
              Condition: { StringEquals: { 'kms:ViaService': 'dynamodb.us-east-1.amazonaws.com' } },
            },
          ],
        },
      },
    },
    // new SqsEventSource(work, { batchSize: 5, maxBatchingWindow: 1 s, reportBatchItemFailures: true, maxConcurrency: 5 })
    WorkMapping: mapping('WorkQueue', {
      BatchSize: 5,
      MaximumBatchingWindowInSeconds: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 5 },
    }),
    SlowMapping: mapping('SlowQueue', { BatchSize: 1, FunctionResponseTypes: ['ReportBatchItemFailures'] }),
    // new SqsEventSource(strict, { batchSize: 1 }): batchItemFailures are ignored, errors fail the batch.
    StrictMapping: mapping('StrictQueue', { BatchSize: 1 }),
    ManualMapping: mapping('ManualQueue', { Enabled: false }),
    // new DynamoEventSource(main, { startingPosition: LATEST, retryAttempts: 1, onFailure: new SqsDlq(streamFailures),
    //   reportBatchItemFailures: true, filters: [FilterCriteria.filter({ dynamodb: { Keys: { pk: { S: FilterRule.beginsWith('STREAMED#') } } } })] })
    StreamMapping: {
      Type: 'AWS::Lambda::EventSourceMapping',
      Properties: {
        FunctionName: { Ref: 'ConsumerFunction' },
        EventSourceArn: getAtt('MainTable74195DAB', 'StreamArn'),
        StartingPosition: 'LATEST',
        BatchSize: 10,
        MaximumRetryAttempts: 1,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        DestinationConfig: { OnFailure: { Destination: getAtt('StreamFailures', 'Arn') } },
        FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ dynamodb: { Keys: { pk: { S: [{ prefix: 'STREAMED#' }] } } } }) }] },
      },
    },
    // What the notifications publisher declares (issue 9 §3): new DynamoEventSource(main, { startingPosition: LATEST,
    //   batchSize: 10, bisectBatchOnError: true, retryAttempts: 2, onFailure: new SqsDlq(eventFailures),
    //   filters: [FilterCriteria.filter({ eventName: FilterRule.isEqual('INSERT'), dynamodb: { NewImage: { type: { S: FilterRule.isEqual('event') } } } })] }).
    // Disabled, so the test polls it by hand and the three records of one transaction arrive as one batch.
    EventsMapping: {
      Type: 'AWS::Lambda::EventSourceMapping',
      Properties: {
        FunctionName: { Ref: 'ConsumerFunction' },
        EventSourceArn: getAtt('MainTable74195DAB', 'StreamArn'),
        Enabled: false,
        StartingPosition: 'LATEST',
        BatchSize: 10,
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: 2,
        DestinationConfig: { OnFailure: { Destination: getAtt('EventFailures', 'Arn') } },
        FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ eventName: ['INSERT'], dynamodb: { NewImage: { type: { S: ['event'] } } } }) }] },
      },
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'payplane-esm-'));
  writeFileSync(join(dir, 'esm.template.json'), JSON.stringify(base));
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify({
      version: '48.0.0',
      artifacts: { [STACK]: { type: 'aws:cloudformation:stack', environment: 'aws://000000000000/us-east-1', properties: { templateFile: 'esm.template.json', stackName: STACK } } },
    }),
  );
  return dir;
}

describe('event source mappings (SQS and DynamoDB streams → Lambda)', () => {
  let cloud: LocalCloud;
  let assemblyDir: string;
  let client: SQSClient;
  let db: DynamoDBClient;
  const table = () => cloud.tables.byLogicalId.MainTable74195DAB!;

  beforeAll(async () => {
    assemblyDir = esmAssembly();
    cloud = await startLocalCloud({
      assemblyDir,
      port: 0,
      inMemory: true,
      quiet: true,
      schedules: false,
      seed: false,
      dynamodbEndpoint: inject('localServices').endpoints.dynamodb,
      // Every timer of the cloud 10× faster (visibility 2 s → 200 ms, batching windows 1 s → 100 ms): the
      // mappings behave the same, and the slow-consumer test needs a visibility timeout shorter than a run.
      timeScale: 10,
    });
    client = new SQSClient({ endpoint: cloud.endpoints.sqs, region: 'us-east-1', credentials });
    db = new DynamoDBClient({ endpoint: cloud.endpoints.dynamodb, region: 'us-east-1', credentials });
  });
  afterAll(async () => {
    client?.destroy();
    db?.destroy();
    await cloud?.stop();
    if (assemblyDir) rmSync(assemblyDir, { recursive: true, force: true });
  });

  /** Every record the consumer saw: id → attempts (each with the record as the function got it). */
  const consumed = async () => {
    const { Items = [] } = await db.send(new ScanCommand({ TableName: table(), ConsistentRead: true }));
    const out = new Map<string, { attempt: string; batchSize: number; record: Record<string, any> }[]>();
    for (const item of Items) {
      if (!item.pk!.S!.startsWith('CONSUMED#')) continue;
      const id = item.pk!.S!.slice('CONSUMED#'.length);
      out.set(id, [...(out.get(id) ?? []), { attempt: item.sk!.S!, batchSize: Number(item.batchSize!.N), record: JSON.parse(item.record!.S!) }]);
    }
    return out;
  };
  const until = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const receiveAll = async (queue: string, expected: number) => {
    // Not deleted: a message comes back after the queue's (scaled) visibility timeout, so count it once.
    const got = new Map<string, { Body?: string; Attributes?: Record<string, string> }>();
    await until(`${expected} message(s) in ${queue}`, async () => {
      const { Messages = [] } = await client.send(
        new ReceiveMessageCommand({ QueueUrl: cloud.queues[queue], MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['All'] }),
      );
      for (const m of Messages) got.set(m.MessageId!, m);
      return got.size >= expected ? true : undefined;
    });
    return [...got.values()];
  };

  it('gives functions the queue URLs (Ref) and the SQS endpoint', () => {
    const env = cloud.runtime.get('ConsumerFunction').definition.environment;
    expect(env.OUT_QUEUE_URL).toBe(`${cloud.endpoints.sqs}/000000000000/${STACK}-OutQueue`);
    expect(cloud.queues.OutQueue).toBe(env.OUT_QUEUE_URL);
  });

  // First of the cloud's tests that write: the stream holds only this transaction's records when it is polled.
  it('stream mapping as the notifications publisher declares it: FilterCriteria on eventName and NewImage.type.S, bisect, retries, OnFailure', async () => {
    // Prepare: one transaction, as the writer puts a change and its events: two events, one poison, one other item.
    const event = (id: string, extra: Record<string, unknown> = {}) => ({
      Put: { TableName: table(), Item: { pk: { S: 'EVENTS#m_1' }, sk: { S: id }, type: { S: 'event' }, ...extra } as never },
    });
    await db.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          event('evt_a'),
          event('evt_poison', { throw: { BOOL: true } }),
          event('evt_c'),
          { Put: { TableName: table(), Item: { pk: { S: 'ORDER#o_1' }, sk: { S: 'ORDER' }, type: { S: 'order' } } } },
        ],
      }),
    );
    // Act: poll by hand (the mapping is disabled) until the stream is drained.
    const outcomes: Record<string, any>[] = [];
    await until('the events batch', async () => {
      const outcome = (await (await fetch(`${cloud.endpoints.admin}/__event-sources/EventsMapping/poll`, { method: 'POST' })).json()) as Record<string, any>;
      outcomes.push(outcome);
      return outcomes.some((o) => o.invoked) ? true : undefined;
    });
    const failures = await receiveAll('EventFailures', 1);
    const records = [...(await consumed()).values()].flat().filter((a) => a.record.eventSource === 'aws:dynamodb' && a.record.dynamodb.Keys.pk.S === 'EVENTS#m_1');
    // Assess: the order item never reached the function; the batch of three was split until the poison stood alone.
    const attempts = (sk: string) => records.filter((a) => a.record.dynamodb.Keys.sk.S === sk).map((a) => a.batchSize);
    expect(outcomes.find((o) => o.invoked)).toMatchObject({ records: 4, filtered: 1, succeeded: 2, failed: 1 });
    // [a, poison, c] fails → [a, poison] fails → [a] succeeds, [poison] fails: retries exhausted (MaximumRetryAttempts 2)
    // → OnFailure alone; [c] succeeds alone.
    expect(attempts('evt_poison').sort()).toEqual([1, 2, 3]);
    expect(attempts('evt_a').sort()).toEqual([1, 2, 3]);
    expect(attempts('evt_c').sort()).toEqual([1, 3]);
    expect(records.every((a) => a.record.eventName === 'INSERT')).toBe(true);
    expect(failures).toHaveLength(1);
    expect(JSON.parse(failures[0]!.Body!)).toMatchObject({
      requestContext: { condition: 'RetryAttemptsExhausted', approximateInvokeCount: 3 },
      responseContext: { functionError: 'Unhandled' },
      DDBStreamBatchInfo: { batchSize: 1, startSequenceNumber: records.find((a) => a.record.dynamodb.Keys.sk.S === 'evt_poison')!.record.dynamodb.SequenceNumber },
    });
  });

  it('never redelivers a message while its invocation runs, however short the scaled visibility timeout (LocalSqs.hold)', async () => {
    // Prepare: SlowQueue's visibility is 2 s (250 ms at time scale 10, the floor); the consumer works for 1 s.
    const sent = await client.send(new SendMessageCommand({ QueueUrl: cloud.queues.SlowQueue, MessageBody: JSON.stringify({ sleepMs: 1000 }) }));
    // Act
    const seen = await until('the slow message consumed and deleted', async () => {
      const attempts = (await consumed()).get(sent.MessageId!);
      if (!attempts) return undefined;
      const depth = (await client.send(new GetQueueAttributesCommand({ QueueUrl: cloud.queues.SlowQueue, AttributeNames: ['All'] }))).Attributes!;
      return depth.ApproximateNumberOfMessages === '0' && depth.ApproximateNumberOfMessagesNotVisible === '0' && depth.ApproximateNumberOfMessagesDelayed === '0' ? attempts : undefined;
    });
    // Assess: one delivery only, though another poller (two by default) asked the whole time.
    expect(seen.map((a) => a.attempt)).toEqual(['ATTEMPT#1']);
    // The queue reports its template values, not the scaled ones.
    expect((await client.send(new GetQueueAttributesCommand({ QueueUrl: cloud.queues.SlowQueue, AttributeNames: ['VisibilityTimeout', 'DelaySeconds'] }))).Attributes).toEqual({
      VisibilityTimeout: '2',
      DelaySeconds: '3',
    });
  });

  it('invokes with SQS events, deletes what succeeded, redrives partial and whole-batch failures to the DLQ', async () => {
    // Prepare
    const work = cloud.queues.WorkQueue!;
    const strict = cloud.queues.StrictQueue!;
    // Act
    const sent = await client.send(
      new SendMessageBatchCommand({
        QueueUrl: work,
        Entries: [
          { Id: 'ok1', MessageBody: JSON.stringify({ n: 1 }), MessageAttributes: { kind: { DataType: 'String', StringValue: 'test' } } },
          { Id: 'fail', MessageBody: JSON.stringify({ n: 2, fail: true }) },
          { Id: 'ok3', MessageBody: JSON.stringify({ n: 3 }) },
          { Id: 'forward', MessageBody: JSON.stringify({ forward: 'hello from Lambda' }) },
        ],
      }),
    );
    const thrown = await client.send(new SendMessageCommand({ QueueUrl: strict, MessageBody: JSON.stringify({ throw: true }) }));
    const ignored = await client.send(new SendMessageCommand({ QueueUrl: strict, MessageBody: JSON.stringify({ fail: true }) }));
    const dead = await receiveAll('DeadLetters', 2);
    const forwarded = await receiveAll('OutQueue', 1);
    const id = (entry: string) => sent.Successful!.find((s) => s.Id === entry)!.MessageId!;
    // Dead letters come two (scaled) visibility timeouts after the first try: wait for the other messages too.
    const everyone = [id('ok1'), id('fail'), id('ok3'), id('forward'), thrown.MessageId!, ignored.MessageId!];
    const seen = await until('every message consumed', async () => {
      const all = await consumed();
      return everyone.every((m) => all.has(m)) ? all : undefined;
    });
    // Assess: the partial failure and the exploding message were each tried twice, then dead-lettered.
    expect(dead.map((m) => JSON.parse(m.Body!)).sort((a, b) => String(a.n).localeCompare(String(b.n)))).toEqual([{ n: 2, fail: true }, { throw: true }]);
    expect(dead.map((m) => m.Attributes!.DeadLetterQueueSourceArn).sort()).toEqual([`arn:aws:sqs:us-east-1:000000000000:${STACK}-StrictQueue`, `arn:aws:sqs:us-east-1:000000000000:${STACK}-WorkQueue`]);
    expect(seen.get(id('fail'))!.map((a) => a.attempt).sort()).toEqual(['ATTEMPT#1', 'ATTEMPT#2']);
    expect(seen.get(thrown.MessageId!)!.map((a) => a.attempt).sort()).toEqual(['ATTEMPT#1', 'ATTEMPT#2']);
    // Successes were deleted after the first attempt; without ReportBatchItemFailures the list is ignored.
    for (const ok of [id('ok1'), id('ok3'), id('forward'), ignored.MessageId!]) expect(seen.get(ok)!.map((a) => a.attempt)).toEqual(['ATTEMPT#1']);
    expect(forwarded.map((m) => m.Body)).toEqual(['hello from Lambda']);
    // The first batch held the four messages sent together (BatchSize 5, batching window 1 s).
    expect(seen.get(id('ok1'))![0]!.batchSize).toBe(4);
    expect(seen.get(id('ok1'))![0]!.record).toEqual({
      messageId: id('ok1'),
      receiptHandle: expect.any(String),
      body: '{"n":1}',
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: expect.stringMatching(/^\d{13}$/),
        SenderId: 'local',
        ApproximateFirstReceiveTimestamp: expect.stringMatching(/^\d{13}$/),
      },
      messageAttributes: { kind: { stringValue: 'test', stringListValues: [], binaryListValues: [], dataType: 'String' } },
      md5OfMessageAttributes: expect.stringMatching(/^[0-9a-f]{32}$/),
      md5OfBody: sent.Successful!.find((s) => s.Id === 'ok1')!.MD5OfMessageBody,
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:us-east-1:000000000000:${STACK}-WorkQueue`,
      awsRegion: 'us-east-1',
    });
    const stats = cloud.stats().triggers['event-sources'] as { logicalId: string; functionErrors: number; succeeded: number }[];
    expect(stats.find((s) => s.logicalId === 'StrictMapping')).toMatchObject({ functionErrors: 2, succeeded: 1 });
    expect(stats.find((s) => s.logicalId === 'WorkMapping')).toMatchObject({ succeeded: 3 });
    // The pollers read and delete with the function's role, so their calls count under its name (the benchmark's per-event costs).
    const byCaller = (cloud.stats().sqs as SqsStats).callsByCaller;
    expect(byCaller.ConsumerFunction).toMatchObject({ ReceiveMessage: expect.any(Number), DeleteMessageBatch: expect.any(Number) });
    expect(byCaller.ConsumerFunction!.SendMessage ?? 0).toBeGreaterThanOrEqual(1); // the forwarded message, sent by the function itself
    expect(byCaller.admin).toMatchObject({ SendMessageBatch: expect.any(Number) });
  });

  it('leaves a disabled mapping alone until it is polled by hand (POST /__event-sources/{id}/poll)', async () => {
    // Prepare
    const sent = await client.send(new SendMessageCommand({ QueueUrl: cloud.queues.ManualQueue, MessageBody: JSON.stringify({ manual: true }) }));
    await new Promise((r) => setTimeout(r, 300));
    const before = (await consumed()).has(sent.MessageId!);
    // Act
    const response = await fetch(`${cloud.endpoints.admin}/__event-sources/ManualMapping/poll`, { method: 'POST' });
    // Assess
    expect(before).toBe(false);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ mapping: 'ManualMapping', records: 1, invoked: true, succeeded: 1, failed: 0 });
    expect((await consumed()).get(sent.MessageId!)).toHaveLength(1);
    expect((await client.send(new GetQueueAttributesCommand({ QueueUrl: cloud.queues.ManualQueue, AttributeNames: ['All'] }))).Attributes).toMatchObject({
      ApproximateNumberOfMessages: '0',
      ApproximateNumberOfMessagesNotVisible: '0',
    });
  });

  it('invokes with DynamoDB stream records that pass the filter; retries a reported failure, then sends it to OnFailure', async () => {
    // Prepare
    const put = (pk: string, extra: Record<string, unknown> = {}) =>
      db.send(new PutItemCommand({ TableName: table(), Item: { pk: { S: pk }, sk: { S: 'ITEM' }, amount: { N: '1999' }, ...extra } as never }));
    // Act
    await put('STREAMED#ok');
    await put('IGNORED#other'); // filtered out: never reaches the function
    await put('STREAMED#bad', { fail: { BOOL: true } });
    const failures = await receiveAll('StreamFailures', 1);
    const records = [...(await consumed()).values()].flat().filter((a) => a.record.eventSource === 'aws:dynamodb');
    // Assess
    const byKey = (pk: string) => records.filter((a) => a.record.dynamodb.Keys.pk.S === pk);
    expect(byKey('IGNORED#other')).toHaveLength(0);
    expect(byKey('STREAMED#ok')).toHaveLength(1);
    expect(byKey('STREAMED#bad')).toHaveLength(2); // first attempt + MaximumRetryAttempts 1
    expect(byKey('STREAMED#ok')[0]!.record).toMatchObject({
      eventName: 'INSERT',
      eventSource: 'aws:dynamodb',
      eventSourceARN: expect.stringMatching(new RegExp(`table/${table()}/stream/`)),
      awsRegion: 'us-east-1',
      dynamodb: {
        Keys: { pk: { S: 'STREAMED#ok' }, sk: { S: 'ITEM' } },
        NewImage: { pk: { S: 'STREAMED#ok' }, sk: { S: 'ITEM' }, amount: { N: '1999' } },
        StreamViewType: 'NEW_AND_OLD_IMAGES',
        SequenceNumber: expect.any(String),
        ApproximateCreationDateTime: expect.any(Number),
      },
    });
    const info = JSON.parse(failures[0]!.Body!);
    expect(info).toMatchObject({
      requestContext: { condition: 'RetryAttemptsExhausted', approximateInvokeCount: 2 },
      DDBStreamBatchInfo: { batchSize: 1, startSequenceNumber: byKey('STREAMED#bad')[0]!.record.dynamodb.SequenceNumber },
    });
  });
  it('runs SQS pollers with ScalingConfig.MaximumConcurrency', () => {
    const stats = cloud.stats().triggers['event-sources'] as { logicalId: string; pollers: number }[];
    expect(stats.find((x) => x.logicalId === 'WorkMapping')!.pollers).toBe(5);
    expect(stats.find((x) => x.logicalId === 'StrictMapping')!.pollers).toBe(2);
  });

  it('records every message sent, with the DelaySeconds it asked for: GET <admin>/__sqs/sent?queue=…', async () => {
    // Prepare
    const since = new Date().toISOString();
    const marker = `recorded-${Date.now()}`;
    await client.send(new SendMessageCommand({ QueueUrl: cloud.queues.OutQueue, MessageBody: JSON.stringify({ marker, hop: 1 }), DelaySeconds: 900 }));
    await client.send(
      new SendMessageBatchCommand({
        QueueUrl: cloud.queues.OutQueue,
        Entries: [
          { Id: 'a', MessageBody: JSON.stringify({ marker, hop: 2 }), DelaySeconds: 15 },
          { Id: 'b', MessageBody: JSON.stringify({ marker, hop: 3 }) },
        ],
      }),
    );
    const get = async (query: string) => {
      const res = await fetch(`${cloud.endpoints.admin}/__sqs/sent?${query}`);
      return { status: res.status, body: (await res.json()) as { queue?: Record<string, string>; messages?: Record<string, any>[]; message?: string } };
    };
    // Act
    const byLogicalId = await get(`queue=OutQueue&contains=${marker}`);
    const byName = await get(`queue=${STACK}-OutQueue&contains=${marker}&since=${encodeURIComponent(since)}`);
    const all = await get('queue=OutQueue');
    const slow = await get('queue=SlowQueue');
    const unknown = await get('queue=NoSuchQueue');
    const badSince = await get('queue=OutQueue&since=yesterday');
    // Assess
    expect(byLogicalId.status).toBe(200);
    expect(byLogicalId.body.queue).toEqual({ logicalId: 'OutQueue', name: `${STACK}-OutQueue`, url: cloud.queues.OutQueue });
    expect(byLogicalId.body.messages!.map((m) => [JSON.parse(m.body).hop, m.delaySeconds, m.perMessageDelay])).toEqual([
      [1, 900, true],
      [2, 15, true],
      [3, 0, false],
    ]);
    expect(byLogicalId.body.messages![0]).toEqual({ messageId: expect.any(String), body: JSON.stringify({ marker, hop: 1 }), delaySeconds: 900, perMessageDelay: true, sentAt: expect.any(String) });
    expect(Date.parse(byLogicalId.body.messages![0]!.sentAt)).toBeGreaterThanOrEqual(Date.parse(since));
    expect(byName.body.messages).toEqual(byLogicalId.body.messages);
    // Messages a function sent are recorded too (the consumer forwarded one in an earlier test).
    expect(all.body.messages!.map((m) => m.body)).toContain('hello from Lambda');
    // The queue's own DelaySeconds applies when the entry has none (recorded unscaled).
    expect(slow.body.messages![0]).toMatchObject({ delaySeconds: 3, perMessageDelay: false });
    expect(cloud.sqsSent('SlowQueue')).toEqual(slow.body.messages);
    expect(unknown).toMatchObject({ status: 404, body: { message: expect.stringContaining("No queue 'NoSuchQueue'") } });
    expect(unknown.body.message).toContain('OutQueue');
    expect(badSince).toMatchObject({ status: 400, body: { message: expect.stringContaining('since=yesterday') } });
    expect(() => cloud.sqsSent('NoSuchQueue')).toThrow(/No queue 'NoSuchQueue'/);
  });

});
