import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { PutCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../commons/clients';
import { notificationEnv, sqs } from './aws';

/**
 * Deliveries: one item per (event, target), its attempts beside it, and the queue message that carries the
 * next attempt. (COMMON.md, "Deliveries": the formats other modules read.)
 *
 *   delivery  pk DELIVERY#<evt>  sk TARGET#<we_id | notify_url>
 *             status pending | succeeded | failed, attempts (made, ever), run_start (the attempt number that
 *             began the current run: a resend or recover starts a new run of the schedule), last_attempt_at,
 *             next_attempt_at; while failed: gsi1pk WEBHOOKENDPOINT#<we_id>#FAILED, gsi1sk <failed_at>#<evt>
 *   attempt   pk DELIVERY#<evt>  sk ATTEMPT#<target>#<nnn>  {at, url, status_code|null, latency_ms, error|null}
 *             nnn: the attempt number, zero-padded to 3 digits so the sort key sorts them (resends continue it)
 *   message   {"event_id","merchant_id","endpoint_id"|"notify_url":true,"attempt":n,"due_at"?,"wait_seconds"?}
 *             n is the attempt's number (attempts + 1 when it was scheduled), never SQS's receive count.
 *             wait_seconds: how long the attempt still waits after this hop arrives (another hop, no call);
 *             due_at: when the attempt was scheduled for (its lateness is measured against it).
 */
export type Target = { endpointId: string } | { notifyUrl: true };

export interface DeliveryMessage {
  event_id: string;
  merchant_id: string;
  endpoint_id?: string;
  notify_url?: true;
  attempt: number;
  due_at?: string;
  wait_seconds?: number;
}

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';

export interface DeliveryItem {
  pk: string;
  sk: string;
  type: 'webhook_delivery';
  event_id: string;
  merchant_id: string;
  target: string;
  status: DeliveryStatus;
  attempts: number;
  run_start: number;
  created_at: string;
  last_attempt_at?: string;
  next_attempt_at?: string;
  failed_at?: string;
  ttl: number;
  gsi1pk?: string;
  gsi1sk?: string;
}

export interface AttemptItem {
  pk: string;
  sk: string;
  type: 'webhook_attempt';
  at: string;
  url: string;
  status_code: number | null;
  latency_ms: number;
  error: string | null;
  ttl: number;
}

export const targetName = (t: Target) => ('endpointId' in t ? t.endpointId : 'notify_url');
export const targetOf = (m: Pick<DeliveryMessage, 'endpoint_id' | 'notify_url'>): Target =>
  m.endpoint_id ? { endpointId: m.endpoint_id } : { notifyUrl: true };
export const deliveryKey = (eventId: string, target: Target | string) => ({
  pk: `DELIVERY#${eventId}`,
  sk: `TARGET#${typeof target === 'string' ? target : targetName(target)}`,
});
export const attemptKey = (eventId: string, target: string, n: number) => ({
  pk: `DELIVERY#${eventId}`,
  sk: `ATTEMPT#${target}#${String(n).padStart(3, '0')}`,
});
export const failedIndexKeys = (endpointId: string, failedAt: string, eventId: string) => ({
  gsi1pk: `WEBHOOKENDPOINT#${endpointId}#FAILED`,
  gsi1sk: `${failedAt}#${eventId}`,
});

/** Deliveries and attempts live as long as the event they deliver (30 days from its creation). */
export const messageFor = (eventId: string, merchantId: string, target: Target, attempt: number, dueAt?: string, waitSeconds = 0): DeliveryMessage => ({
  event_id: eventId,
  merchant_id: merchantId,
  ...('endpointId' in target ? { endpoint_id: target.endpointId } : { notify_url: true as const }),
  attempt,
  ...(dueAt ? { due_at: dueAt } : {}),
  ...(waitSeconds > 0 ? { wait_seconds: waitSeconds } : {}),
});

export function parseMessage(body: string): DeliveryMessage {
  const m = JSON.parse(body) as DeliveryMessage;
  if (typeof m.event_id !== 'string' || typeof m.merchant_id !== 'string' || !Number.isInteger(m.attempt) || m.attempt < 1 || (!m.endpoint_id && m.notify_url !== true) || (m.wait_seconds !== undefined && !(Number.isInteger(m.wait_seconds) && m.wait_seconds >= 0))) {
    throw new Error(`Not a delivery message: ${body.slice(0, 200)}`);
  }
  return m;
}

/**
 * Creates the pending delivery, and says whether to enqueue its first attempt: yes when this call created it,
 * and also when it exists but no attempt was made yet (a publisher that died between the put and the send
 * must not lose the message; a duplicate first message is dropped by the deliverer, which makes attempt n
 * only while `attempts < n`).
 */
export async function createDelivery(table: string, input: { eventId: string; merchantId: string; target: Target; now: Date; ttl: number }): Promise<boolean> {
  const item: DeliveryItem = {
    ...deliveryKey(input.eventId, input.target),
    type: 'webhook_delivery',
    event_id: input.eventId,
    merchant_id: input.merchantId,
    target: targetName(input.target),
    status: 'pending',
    attempts: 0,
    run_start: 1,
    created_at: input.now.toISOString(),
    next_attempt_at: input.now.toISOString(),
    ttl: input.ttl,
  };
  try {
    await dynamo().send(
      new PutCommand({
        TableName: table,
        Item: item,
        ConditionExpression: 'attribute_not_exists(pk) OR (attempts = :zero AND #status = :pending)',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':zero': 0, ':pending': 'pending' },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/**
 * Starts a new run of the schedule for a delivery (resend, recover): pending again, numbered on from its last
 * attempt. `onlyIfFailed` (recover) makes a second recover of the same failure queue nothing. Returns the
 * attempt number to enqueue, or undefined when the condition did not hold.
 */
export async function restartDelivery(
  table: string,
  input: { eventId: string; merchantId: string; target: Target; now: Date; ttl: number; onlyIfFailed: boolean },
): Promise<number | undefined> {
  try {
    const out = await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: deliveryKey(input.eventId, input.target),
        UpdateExpression:
          'SET #status = :pending, run_start = if_not_exists(attempts, :zero) + :one, attempts = if_not_exists(attempts, :zero), ' +
          'next_attempt_at = :now, event_id = :evt, merchant_id = :m, target = :target, #type = :type, created_at = if_not_exists(created_at, :now), #ttl = if_not_exists(#ttl, :ttl) ' +
          'REMOVE gsi1pk, gsi1sk, failed_at',
        ConditionExpression: input.onlyIfFailed ? '#status = :failed AND merchant_id = :m' : 'attribute_not_exists(pk) OR merchant_id = :m',
        ExpressionAttributeNames: { '#status': 'status', '#type': 'type', '#ttl': 'ttl' },
        ExpressionAttributeValues: {
          ':pending': 'pending',
          ':zero': 0,
          ':one': 1,
          ':now': input.now.toISOString(),
          ':evt': input.eventId,
          ':m': input.merchantId,
          ':target': targetName(input.target),
          ':type': 'webhook_delivery',
          ':ttl': input.ttl,
          ...(input.onlyIfFailed ? { ':failed': 'failed' } : {}),
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return Number(out.Attributes?.run_start);
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
}

export interface AttemptRecord {
  n: number;
  at: Date;
  url: string;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  /** The delivery's status after this attempt. */
  status: DeliveryStatus;
  nextAttemptAt?: string;
  /** The endpoint to index a failed delivery under (recover), if it has one. */
  endpointId?: string;
}

/**
 * Writes attempt n and the delivery's new state in one transaction, only if n is still ahead of what is
 * recorded (a duplicate message that raced this one recorded it already). Returns false then.
 */
export async function recordAttempt(table: string, delivery: Pick<DeliveryItem, 'event_id' | 'target' | 'ttl'>, a: AttemptRecord): Promise<boolean> {
  const at = a.at.toISOString();
  const attempt: AttemptItem = {
    ...attemptKey(delivery.event_id, delivery.target, a.n),
    type: 'webhook_attempt',
    at,
    url: a.url,
    status_code: a.statusCode,
    latency_ms: a.latencyMs,
    error: a.error,
    ttl: delivery.ttl,
  };
  const failed = a.status === 'failed';
  const index = failed && a.endpointId ? failedIndexKeys(a.endpointId, at, delivery.event_id) : undefined;
  const sets = ['#status = :status', 'attempts = :n', 'last_attempt_at = :at'];
  const values: Record<string, unknown> = { ':status': a.status, ':n': a.n, ':at': at };
  if (a.nextAttemptAt) {
    sets.push('next_attempt_at = :next');
    values[':next'] = a.nextAttemptAt;
  }
  if (failed) {
    sets.push('failed_at = :at');
    if (index) {
      sets.push('gsi1pk = :gpk', 'gsi1sk = :gsk');
      Object.assign(values, { ':gpk': index.gsi1pk, ':gsk': index.gsi1sk });
    }
  }
  const removes = a.nextAttemptAt ? [] : ['next_attempt_at'];
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Update: {
              TableName: table,
              Key: deliveryKey(delivery.event_id, delivery.target),
              UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
              ConditionExpression: 'attempts < :n',
              ExpressionAttributeNames: { '#status': 'status' },
              ExpressionAttributeValues: values,
            },
          },
          { Put: { TableName: table, Item: attempt } },
        ],
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof TransactionCanceledException && error.CancellationReasons?.[0]?.Code === 'ConditionalCheckFailed') return false;
    throw error;
  }
}

/** Marks a delivery failed without an attempt (its endpoint was deleted or disabled before it was due). */
export async function abandonDelivery(table: string, delivery: DeliveryItem, now: Date, endpointId?: string): Promise<void> {
  const at = now.toISOString();
  const index = endpointId ? failedIndexKeys(endpointId, at, delivery.event_id) : undefined;
  await dynamo()
    .send(
      new UpdateCommand({
        TableName: table,
        Key: deliveryKey(delivery.event_id, delivery.target),
        UpdateExpression: `SET #status = :failed, failed_at = :at${index ? ', gsi1pk = :gpk, gsi1sk = :gsk' : ''} REMOVE next_attempt_at`,
        ConditionExpression: '#status = :pending',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':failed': 'failed', ':pending': 'pending', ':at': at, ...(index ? { ':gpk': index.gsi1pk, ':gsk': index.gsi1sk } : {}) },
      }),
    )
    .catch((error) => {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    });
}

export type Lane = 'main' | 'slow';

const laneUrl = (lane: Lane) => notificationEnv(lane === 'slow' ? 'DELIVERY_SLOW_QUEUE_URL' : 'DELIVERY_QUEUE_URL');

export async function enqueue(lane: Lane, message: DeliveryMessage, delaySeconds = 0): Promise<void> {
  await sqs().send(new SendMessageCommand({ QueueUrl: laneUrl(lane), MessageBody: JSON.stringify(message), DelaySeconds: delaySeconds || undefined }));
}

/** Several first attempts at once (SendMessageBatch, 10 per call); throws if any entry failed. */
export async function enqueueAll(lane: Lane, messages: DeliveryMessage[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 10) {
    const chunk = messages.slice(i, i + 10);
    const out = await sqs().send(
      new SendMessageBatchCommand({ QueueUrl: laneUrl(lane), Entries: chunk.map((m, j) => ({ Id: String(j), MessageBody: JSON.stringify(m) })) }),
    );
    if (out.Failed?.length) throw new Error(`SendMessageBatch refused ${out.Failed.length} delivery messages: ${out.Failed.map((f) => f.Code).join(', ')}`);
  }
}

/** After the last attempt of a run: the message lands in the delivery DLQ for operators (recover re-queues). */
export async function sendToDlq(message: DeliveryMessage, reason: string): Promise<void> {
  await sqs().send(
    new SendMessageCommand({
      QueueUrl: notificationEnv('DELIVERY_DLQ_URL'),
      MessageBody: JSON.stringify(message),
      MessageAttributes: { reason: { DataType: 'String', StringValue: reason.slice(0, 256) } },
    }),
  );
}
