import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import { dynamo } from '../commons/clients';
import { ConflictError, InvalidRequestError, NotFoundError } from '../commons/errors';
import { eventKey, type EventItem } from '../events/event';
import { parseInput } from '../http/validation';
import { enqueue, messageFor, restartDelivery, type DeliveryItem, type Target } from './deliveries';
import { breakerOpen, enabledEndpoints, getEndpoint, type WebhookEndpoint } from '../webhooks/endpoints';
import { endpointIdSchema } from '../webhooks/schemas';
import { notifyUrlOf } from './publisher';

/**
 * Resend and recover: a new run of the retry schedule for deliveries the merchant asks for again. Both number
 * the new attempts on from the delivery's last (attempts stay listed, in order), and a message of the old run
 * that is still waiting carries the same attempt number as the new run's, so whichever comes first is made
 * and the other dropped.
 */
export const resendSchema = z
  .object({ endpoint: z.string({ error: 'Send a webhook endpoint id such as "we_…".' }).regex(/^we_[A-Za-z0-9]{1,64}$/, 'Send a webhook endpoint id such as "we_…".').optional() })
  .strict();

export const recoverSchema = z
  .object({
    since: z.iso.datetime({ offset: true, error: 'Send an ISO 8601 time such as "2026-12-01T00:00:00Z".' }),
  })
  .strict();

export interface Caller {
  merchantId: string;
  now: Date;
}

export interface Queued {
  endpoint: string | null;
  notify_url: boolean;
  attempt: number;
}

/** POST /v1/events/{id}/resend: every enabled endpoint subscribed to the type (and the order's notify_url), or `{"endpoint"}`. */
export async function resendEvent(table: string, caller: Caller, eventId: string, body: unknown): Promise<{ object: 'event_resend'; event: string; queued: Queued[] }> {
  const input = parseInput(resendSchema, body);
  const event = /^evt_[A-Za-z0-9]{1,64}$/.test(eventId)
    ? ((await dynamo().send(new GetCommand({ TableName: table, Key: eventKey(caller.merchantId, eventId) }))).Item as EventItem | undefined)
    : undefined;
  if (!event) throw new NotFoundError('event', eventId);

  const targets: { target: Target; endpoint?: WebhookEndpoint }[] = [];
  if (input.endpoint) {
    const endpoint = await getEndpoint(table, caller.merchantId, input.endpoint);
    if (!endpoint) throw new NotFoundError('webhook endpoint', input.endpoint, 'endpoint');
    if (endpoint.disabled) {
      throw new ConflictError('webhook_endpoint_disabled', `Webhook endpoint '${endpoint.id}' is disabled, so nothing is sent to it. Enable it (POST /v1/webhook_endpoints/${endpoint.id} with {"disabled": false}), then resend.`, { param: 'endpoint' });
    }
    targets.push({ target: { endpointId: endpoint.id }, endpoint });
  } else {
    for (const endpoint of await enabledEndpoints(table, caller.merchantId, event.event_type)) targets.push({ target: { endpointId: endpoint.id }, endpoint });
    if (notifyUrlOf(event.body)) targets.push({ target: { notifyUrl: true } });
  }
  const queued: Queued[] = [];
  for (const { target, endpoint } of targets) {
    const attempt = await restartDelivery(table, { eventId: event.id, merchantId: caller.merchantId, target, now: caller.now, ttl: event.ttl, onlyIfFailed: false });
    if (attempt === undefined) continue;
    await enqueue(breakerOpen(endpoint, caller.now) ? 'slow' : 'main', messageFor(event.id, caller.merchantId, target, attempt));
    queued.push({ endpoint: 'endpointId' in target ? target.endpointId : null, notify_url: !('endpointId' in target), attempt });
  }
  return { object: 'event_resend', event: event.id, queued };
}

/** At most this many failed deliveries per call; `has_more` says to call again (the queued ones are no longer failed). */
const RECOVER_LIMIT = 500;

/** POST /v1/webhook_endpoints/{id}/recover: every delivery to it that failed since `since`, queued once more. */
export async function recoverEndpoint(
  table: string,
  caller: Caller,
  endpointId: string,
  body: unknown,
): Promise<{ object: 'webhook_endpoint_recovery'; endpoint: string; since: string; queued: number; has_more: boolean }> {
  const input = parseInput(recoverSchema, body);
  const since = new Date(input.since);
  if (since.getTime() > caller.now.getTime()) {
    throw new InvalidRequestError('parameter_invalid', `Invalid 'since': ${input.since} is in the future. Send a past time: deliveries that failed after it are queued again.`, { param: 'since' });
  }
  const endpoint = endpointIdSchema.safeParse(endpointId).success ? await getEndpoint(table, caller.merchantId, endpointId) : undefined;
  if (!endpoint) throw new NotFoundError('webhook endpoint', endpointId);
  if (endpoint.disabled) {
    throw new ConflictError('webhook_endpoint_disabled', `Webhook endpoint '${endpoint.id}' is disabled. Enable it (POST /v1/webhook_endpoints/${endpoint.id} with {"disabled": false}), then recover.`);
  }
  let queued = 0;
  let start: Record<string, unknown> | undefined;
  let scanned = 0;
  do {
    const page = await dynamo().send(
      new QueryCommand({
        TableName: table,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :failed AND gsi1sk >= :since',
        ExpressionAttributeValues: { ':failed': `WEBHOOKENDPOINT#${endpoint.id}#FAILED`, ':since': since.toISOString() },
        ExclusiveStartKey: start,
        Limit: RECOVER_LIMIT - scanned,
      }),
    );
    for (const failed of (page.Items ?? []) as DeliveryItem[]) {
      scanned++;
      if (failed.merchant_id !== caller.merchantId) continue;
      const target: Target = { endpointId: endpoint.id };
      const ttl = failed.ttl;
      // Only while still failed: a second recover, or one racing this, queues it no second time.
      const attempt = await restartDelivery(table, { eventId: failed.event_id, merchantId: caller.merchantId, target, now: caller.now, ttl, onlyIfFailed: true });
      if (attempt === undefined) continue;
      await enqueue(breakerOpen(endpoint, caller.now) ? 'slow' : 'main', messageFor(failed.event_id, caller.merchantId, target, attempt));
      queued++;
    }
    start = page.LastEvaluatedKey;
  } while (start && scanned < RECOVER_LIMIT);
  return { object: 'webhook_endpoint_recovery', endpoint: endpoint.id, since: since.toISOString(), queued, has_more: !!start };
}
