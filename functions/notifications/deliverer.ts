import { BatchGetCommand } from '@aws-sdk/lib-dynamodb';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { dynamo } from '../commons/clients';
import { logger } from '../commons/logger';
import { METRICS_NAMESPACE } from '../commons/metrics';
import type { Secret } from '../commons/secret';
import { eventKey, type EventItem } from '../events/event';
import { breakerOpen, disableEndpoint, endpointKey, fromItem, recordFailure, recordSuccess, signingSecrets, type WebhookEndpoint } from '../webhooks/endpoints';
import { loopbackAllowed } from './aws';
import {
  abandonDelivery,
  deliveryKey,
  enqueue,
  messageFor,
  recordAttempt,
  sendToDlq,
  targetName,
  targetOf,
  type DeliveryItem,
  type DeliveryMessage,
  type Lane,
} from './deliveries';
import { postWebhook, type PostOptions, type PostResult } from './outbound';
import { platformSigner } from './platform-key';
import { notifyUrlOf } from './publisher';
import { firstHop, gapAfter, LATENESS_METRIC, MAX_ATTEMPTS, retryAfterSeconds } from './schedule';
import { signDelivery } from './signing';

/**
 * One delivery message → at most one HTTP attempt, then the next step scheduled:
 *
 *   wait_seconds left (a hop of a long gap) → sent again with the rest of the wait (≤ 900 s a hop), no HTTP call
 *   stale (attempt made already, delivery settled, event expired) → dropped
 *   breaker open and on the shared lane → moved to the slow lane, no HTTP call
 *   otherwise: sign afresh, POST, then
 *     2xx        → succeeded (and the breaker closes)
 *     410 Gone   → failed, endpoint disabled
 *     other      → the next attempt enqueued at its scheduled time (429: Retry-After), or, after the 16th
 *                  attempt of the run, failed + the delivery DLQ
 *
 * Side-effect messages are sent before the attempt is recorded: a deliverer killed in between redelivers the
 * message, which sends again (same webhook-id; at least once) and schedules again (the duplicate next message
 * is dropped, since its attempt will have been made). The other order would lose the next attempt.
 */
/**
 * The circuit breaker: 5 failures in a row open it for an hour from the latest failure (longer than the
 * schedule's gaps at that point, so it does not lapse between two attempts); any success closes it.
 */
export const BREAKER_THRESHOLD = 5;
export const BREAKER_OPEN_SECONDS = 60 * 60;

export interface DeliverOptions {
  table: string;
  lane: Lane;
  now?: () => Date;
  post?: Partial<PostOptions>;
}

export type Outcome = 'hop' | 'stale' | 'moved' | 'succeeded' | 'retrying' | 'failed' | 'abandoned';

const lateness = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'payplane', defaultDimensions: { stage: process.env.STAGE ?? 'local' } });


export async function deliver(message: DeliveryMessage, options: DeliverOptions): Promise<Outcome> {
  const now = (options.now ?? (() => new Date()))();
  if (message.wait_seconds) {
    const { delay, rest } = firstHop(message.wait_seconds);
    const { wait_seconds: _, ...due } = message;
    await enqueue(options.lane, rest > 0 ? { ...due, wait_seconds: rest } : due, delay);
    return 'hop';
  }
  const target = targetOf(message);
  const { event, delivery, endpoint } = await load(options.table, message);
  if (!event || !delivery || delivery.status !== 'pending' || delivery.attempts >= message.attempt || delivery.merchant_id !== message.merchant_id) return 'stale';
  if ('endpointId' in target && (!endpoint || endpoint.disabled)) {
    await abandonDelivery(options.table, delivery, now, target.endpointId);
    return 'abandoned';
  }
  if (options.lane === 'main' && breakerOpen(endpoint, now)) {
    await enqueue('slow', message);
    return 'moved';
  }
  const url = endpoint?.url ?? notifyUrlOf(event.body);
  if (!url) {
    await abandonDelivery(options.table, delivery, now);
    return 'abandoned';
  }

  const due = message.due_at ? Date.parse(message.due_at) : Date.parse(delivery.next_attempt_at ?? delivery.created_at);
  lateness.addMetric(LATENESS_METRIC, MetricUnit.Seconds, Math.max(0, (now.getTime() - due) / 1000));
  lateness.publishStoredMetrics();

  const secrets: Secret<string>[] = endpoint ? await signingSecrets(endpoint, now) : [];
  const signer = await platformSigner(options.table);
  const headers = signDelivery({ id: event.id, body: event.body, now, secrets }, signer);
  const result = await postWebhook(url, { ...headers }, event.body, { allowLoopback: loopbackAllowed(), ...options.post });
  const position = message.attempt - (delivery.run_start ?? 1) + 1;
  const ok = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
  const gone = result.statusCode === 410 && !!endpoint;

  let outcome: Outcome;
  let nextAttemptAt: string | undefined;
  if (ok) {
    outcome = 'succeeded';
    if (endpoint) await recordSuccess(options.table, endpoint);
  } else {
    const open = endpoint ? await recordFailure(options.table, endpoint, now, BREAKER_THRESHOLD, BREAKER_OPEN_SECONDS) : false;
    const scheduled = gone ? undefined : gapAfter(position);
    if (scheduled === undefined) {
      outcome = 'failed';
      if (gone) await disableEndpoint(options.table, message.merchant_id, endpoint.id, 'The endpoint answered 410 Gone.', now);
      await sendToDlq(message, gone ? 'gone' : `failed ${MAX_ATTEMPTS} attempts`);
    } else {
      outcome = 'retrying';
      const gap = result.statusCode === 429 ? retryAfterSeconds(result.retryAfter, scheduled, now) : scheduled;
      nextAttemptAt = new Date(now.getTime() + gap * 1000).toISOString();
      const { delay, rest } = firstHop(gap);
      const next = messageFor(event.id, message.merchant_id, target, message.attempt + 1, nextAttemptAt, rest);
      // An open breaker keeps (or puts) the endpoint's next attempt in the slow lane; closed, it is back on the shared one.
      await enqueue(open ? 'slow' : 'main', next, delay);
    }
  }
  const recorded = await recordAttempt(options.table, delivery, {
    n: message.attempt,
    at: now,
    url,
    statusCode: result.statusCode,
    latencyMs: result.latencyMs,
    error: result.error,
    status: outcome === 'succeeded' ? 'succeeded' : outcome === 'failed' ? 'failed' : 'pending',
    nextAttemptAt,
    endpointId: 'endpointId' in target ? target.endpointId : undefined,
  });
  logAttempt(message, result, outcome, recorded);
  return outcome;
}

/** The event, the delivery and the endpoint in one BatchGetItem. */
async function load(table: string, message: DeliveryMessage): Promise<{ event?: EventItem; delivery?: DeliveryItem; endpoint?: WebhookEndpoint }> {
  const target = targetOf(message);
  const keys: Record<string, string>[] = [eventKey(message.merchant_id, message.event_id), deliveryKey(message.event_id, target)];
  if ('endpointId' in target) keys.push(endpointKey(target.endpointId));
  const items: Record<string, unknown>[] = [];
  let pending: Record<string, string>[] | undefined = keys;
  for (let round = 0; pending?.length; round++) {
    if (round > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** round));
    if (round > 5) throw new Error('BatchGetItem kept returning unprocessed keys');
    const out = await dynamo().send(new BatchGetCommand({ RequestItems: { [table]: { Keys: pending, ConsistentRead: true } } }));
    items.push(...((out.Responses?.[table] ?? []) as Record<string, unknown>[]));
    pending = out.UnprocessedKeys?.[table]?.Keys as Record<string, string>[] | undefined;
  }
  const find = (k: Record<string, string>) => items.find((i) => i.pk === k.pk && i.sk === k.sk);
  const item = 'endpointId' in target ? find(endpointKey(target.endpointId)) : undefined;
  const endpoint = item ? fromItem(item) : undefined;
  return {
    event: find(keys[0]!) as EventItem | undefined,
    delivery: find(keys[1]!) as DeliveryItem | undefined,
    // Another merchant's endpoint id in a message is never called.
    endpoint: endpoint?.merchant_id === message.merchant_id ? endpoint : undefined,
  };
}

function logAttempt(message: DeliveryMessage, result: PostResult, outcome: Outcome, recorded: boolean): void {
  // Never the URL's query or the body: a merchant may put tokens in either.
  logger.info('webhook attempt', {
    event_id: message.event_id,
    target: targetName(targetOf(message)),
    attempt: message.attempt,
    status_code: result.statusCode,
    latency_ms: result.latencyMs,
    error: result.error,
    outcome,
    recorded,
  });
}
