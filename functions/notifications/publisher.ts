import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../commons/clients';
import { logger } from '../commons/logger';
import { eventKey, UNPUBLISHED_SHARDS, type EventItem, type EventType, type PlatformEvent } from '../events/event';
import { notificationEnv, sqs } from './aws';
import { createDelivery, enqueueAll, messageFor, type DeliveryMessage, type Target } from './deliveries';
import { breakerOpen, enabledEndpoints, type WebhookEndpoint } from '../webhooks/endpoints';

/**
 * Publishing: an event item → one delivery per target, each with its first message on the delivery queue, then
 * the event marked published (out of the sparse UNPUBLISHED index). Run by the stream's publisher and, for
 * whatever it missed (a stream down longer than its 24 hours, a batch sent to the on-failure queue), by the
 * sweeper. Publishing twice is harmless: a delivery that exists already is not enqueued again unless it has
 * made no attempt (createDelivery), and the deliverer drops duplicate messages.
 *
 * Targets: the merchant's enabled endpoints subscribed to the type, and the order's notify_url (Alipay's
 * per-order notification URL) for the order's own events: order.* events carry it in data.object.notify_url;
 * refund.* events carry it too when the refund names the order's (refunds of an order are news to the same
 * integration: Alipay notifies refunds to the order's notify_url as well).
 */
export const RECEIPT_EVENTS: readonly EventType[] = ['order.succeeded', 'refund.succeeded'];

export type PublishableEvent = Pick<EventItem, 'id' | 'merchant_id' | 'event_type' | 'body' | 'ttl'>;

export function notifyUrlOf(body: string | PlatformEvent): string | undefined {
  const event = typeof body === 'string' ? (JSON.parse(body) as PlatformEvent) : body;
  const url = event.data.object.notify_url;
  return typeof url === 'string' && url ? url : undefined;
}

export async function publishEvent(table: string, event: PublishableEvent, now = new Date()): Promise<{ deliveries: number }> {
  const endpoints = await enabledEndpoints(table, event.merchant_id, event.event_type);
  const targets: { target: Target; endpoint?: WebhookEndpoint }[] = endpoints.map((endpoint) => ({ target: { endpointId: endpoint.id }, endpoint }));
  if (notifyUrlOf(event.body)) targets.push({ target: { notifyUrl: true } });

  const lanes: Record<'main' | 'slow', DeliveryMessage[]> = { main: [], slow: [] };
  await Promise.all(
    targets.map(async ({ target, endpoint }) => {
      if (await createDelivery(table, { eventId: event.id, merchantId: event.merchant_id, target, now, ttl: event.ttl })) {
        // An endpoint whose breaker is open gets its new deliveries in the slow lane straight away.
        lanes[breakerOpen(endpoint, now) ? 'slow' : 'main'].push(messageFor(event.id, event.merchant_id, target, 1));
      }
    }),
  );
  await Promise.all([enqueueAll('main', lanes.main), enqueueAll('slow', lanes.slow)]);

  const receipts = notificationEnv('RECEIPTS_QUEUE_URL');
  if (receipts && RECEIPT_EVENTS.includes(event.event_type)) {
    // The receipts sender sends once per event however often this message arrives.
    await sqs().send(new SendMessageCommand({ QueueUrl: receipts, MessageBody: JSON.stringify({ event_id: event.id, merchant_id: event.merchant_id }) }));
  }
  await markPublished(table, event, now);
  return { deliveries: lanes.main.length + lanes.slow.length };
}

/** Out of the UNPUBLISHED index: the sweeper will not see it again. */
async function markPublished(table: string, event: PublishableEvent, now: Date): Promise<void> {
  await dynamo()
    .send(
      new UpdateCommand({
        TableName: table,
        Key: eventKey(event.merchant_id, event.id),
        UpdateExpression: 'SET published_at = if_not_exists(published_at, :now) REMOVE gsi2pk, gsi2sk',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':now': now.toISOString() },
      }),
    )
    .catch((error) => {
      // Expired (TTL) between the read and now: nothing left to mark.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    });
}

/** Events left unpublished this long are the sweeper's: younger ones are the stream publisher's, still in flight. */
export const SWEEP_AFTER_MS = 2 * 60_000;
/** Per shard per run; the next run (a minute later) continues. */
const SWEEP_LIMIT = 100;

/** Publishes every event still unpublished after SWEEP_AFTER_MS (gsi2 UNPUBLISHED#<shard>, oldest first). */
export async function sweepUnpublished(table: string, now = new Date()): Promise<{ published: number; failed: number }> {
  const before = new Date(now.getTime() - SWEEP_AFTER_MS).toISOString();
  let published = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: UNPUBLISHED_SHARDS }, async (_, shard) => {
      const page = await dynamo().send(
        new QueryCommand({
          TableName: table,
          IndexName: 'gsi2',
          KeyConditionExpression: 'gsi2pk = :shard AND gsi2sk < :before',
          ExpressionAttributeValues: { ':shard': `UNPUBLISHED#${shard}`, ':before': before },
          Limit: SWEEP_LIMIT,
        }),
      );
      for (const entry of (page.Items ?? []) as Pick<EventItem, 'type' | 'id' | 'merchant_id'>[]) {
        if (entry.type !== 'event') continue;
        // gsi2 holds ids only (it is shared with the order sweeps): the body comes from the item.
        const { Item } = await dynamo().send(new GetCommand({ TableName: table, Key: eventKey(entry.merchant_id, entry.id) }));
        if (!Item || !Item.gsi2pk) continue;
        try {
          await publishEvent(table, Item as EventItem, now);
          published++;
        } catch (error) {
          // One bad event must not stop the others; it stays unpublished for the next run.
          failed++;
          logger.error('sweep: publishing failed', { event_id: entry.id, error: (error as Error).message });
        }
      }
    }),
  );
  return { published, failed };
}
