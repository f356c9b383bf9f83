import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../commons/clients';
import { eventIdFloor, eventKey, type PlatformEvent } from './event';

/**
 * Reads of the events API. Events: pk EVENTS#<merchant> sk <evt id> (event.ts), so every read is inside the
 * caller's own partition. Deliveries (functions/notifications, written by the deliverer):
 *   pk DELIVERY#<evt> sk TARGET#<we_id | notify_url>       {status, attempts, last_attempt_at, next_attempt_at}
 *   pk DELIVERY#<evt> sk ATTEMPT#<target>#<nn>             {at, url, status_code, latency_ms, error}
 * read only for an event already found in the caller's partition.
 */

/** Above every id character (base62): the open upper end of a key range. */
const ID_CEILING = 'evt_~';

export interface EventFilters {
  limit: number;
  /** The page ends just before this event (newest first). */
  startingAfter?: string;
  type?: string;
  createdGte?: Date;
  createdLt?: Date;
}

/**
 * Newest first. Ids are time-ordered, so the created filters and the cursor are one key range: no index, no
 * filter over the whole partition. `type` is a filter expression; pages are read until `limit + 1` match, so
 * `has_more` is exact.
 */
export async function listEvents(table: string, merchantId: string, f: EventFilters): Promise<{ events: PlatformEvent[]; hasMore: boolean }> {
  const lower = f.createdGte ? eventIdFloor(f.createdGte) : 'evt_';
  // No id equals a floor (floors are shorter than ids), so BETWEEN's inclusive upper end is a strict "<" here.
  let upper = f.createdLt ? eventIdFloor(f.createdLt) : ID_CEILING;
  if (f.startingAfter && f.startingAfter < upper) upper = f.startingAfter; // inclusive: the cursor is dropped below
  if (lower > upper) return { events: [], hasMore: false };
  const events: PlatformEvent[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lower AND :upper',
        ExpressionAttributeNames: { '#body': 'body', ...(f.type ? { '#type': 'event_type' } : {}) },
        ExpressionAttributeValues: { ':pk': eventKey(merchantId, '').pk, ':lower': lower, ':upper': upper, ...(f.type ? { ':type': f.type } : {}) },
        FilterExpression: f.type ? '#type = :type' : undefined,
        ProjectionExpression: 'sk, #body',
        ScanIndexForward: false,
        ExclusiveStartKey: startKey,
        // One more for has_more, one more for the cursor itself.
        Limit: f.limit + 2,
      }),
    );
    for (const item of page.Items ?? []) if (item.sk !== f.startingAfter) events.push(JSON.parse(item.body as string) as PlatformEvent);
    startKey = page.LastEvaluatedKey;
  } while (startKey && events.length <= f.limit);
  return { events: events.slice(0, f.limit), hasMore: events.length > f.limit };
}

export async function getEvent(table: string, merchantId: string, id: string): Promise<PlatformEvent | undefined> {
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: table, Key: eventKey(merchantId, id), ProjectionExpression: '#body', ExpressionAttributeNames: { '#body': 'body' } }),
  );
  return Item ? (JSON.parse(Item.body as string) as PlatformEvent) : undefined;
}

export interface DeliveryAttempt {
  /** The endpoint id, or "notify_url" (the order's own URL). */
  target: string;
  url: string;
  attempted_at: string;
  status_code: number | null;
  latency_ms: number | null;
  error: string | null;
}

export interface Delivery {
  target: string;
  status: string;
  attempts: number;
  last_attempt_at: string | null;
  next_attempt_at: string | null;
}

/** Every delivery of an event and every attempt, attempts oldest first. Call only for an event of the caller. */
export async function deliveriesOf(table: string, eventId: string): Promise<{ deliveries: Delivery[]; attempts: DeliveryAttempt[] }> {
  const deliveries: Delivery[] = [];
  const attempts: (DeliveryAttempt & { sk: string })[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `DELIVERY#${eventId}` },
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) {
      const sk = String(item.sk);
      if (sk.startsWith('TARGET#')) {
        deliveries.push({
          target: sk.slice('TARGET#'.length),
          status: String(item.status),
          attempts: Number(item.attempts ?? 0),
          last_attempt_at: (item.last_attempt_at as string | undefined) ?? null,
          next_attempt_at: (item.next_attempt_at as string | undefined) ?? null,
        });
      } else if (sk.startsWith('ATTEMPT#')) {
        attempts.push({
          sk,
          // ATTEMPT#<target>#<nn>: the target is everything between the prefix and the last '#'.
          target: sk.slice('ATTEMPT#'.length, sk.lastIndexOf('#')),
          url: String(item.url),
          attempted_at: String(item.at),
          status_code: (item.status_code as number | null | undefined) ?? null,
          latency_ms: (item.latency_ms as number | null | undefined) ?? null,
          error: (item.error as string | null | undefined) ?? null,
        });
      }
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  attempts.sort((a, b) => a.attempted_at.localeCompare(b.attempted_at) || a.sk.localeCompare(b.sk));
  return { deliveries, attempts: attempts.map(({ sk, ...attempt }) => attempt) };
}
