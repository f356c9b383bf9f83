import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../commons/clients';
import { open } from '../commons/crypto';
import type { Secret } from '../commons/secret';

/**
 * Webhook endpoint items, read exactly as COMMON.md documents them. PRIVATE STAND-IN: the endpoints module
 * (functions/webhooks/endpoints.ts) owns this storage; until it is merged, delivery reads the items here.
 * At merge, enabledEndpoints / getEndpoint / signingSecrets / disableEndpoint switch to that module; the
 * breaker writes (recordFailure / recordSuccess) stay here, as the deliverer owns those attributes.
 *
 *   endpoint  pk WEBHOOKENDPOINT#<we_id>  sk ENDPOINT  gsi1pk MERCHANT#<merchant>  gsi1sk WEBHOOKENDPOINT#<created_at>#<we_id>
 */
export interface WebhookEndpoint {
  id: string;
  merchant_id: string;
  url: string;
  enabled_events: string[];
  description?: string;
  disabled: boolean;
  created_at: string;
  updated_at: string;
  secrets: { ciphertext: Uint8Array; expires_at?: string }[];
  /** Failures in a row since the last success (the circuit breaker). */
  consecutive_failures?: number;
  /** While in the future, the endpoint's deliveries wait in the slow lane. */
  open_until?: string;
}

export const endpointKey = (id: string) => ({ pk: `WEBHOOKENDPOINT#${id}`, sk: 'ENDPOINT' });

const subscribed = (endpoint: WebhookEndpoint, eventType: string) =>
  !endpoint.disabled && (endpoint.enabled_events.includes('*') || endpoint.enabled_events.includes(eventType));

/** The merchant's endpoints that are not disabled and subscribe to `eventType` (a merchant has a handful). */
export async function enabledEndpoints(table: string, merchantId: string, eventType: string): Promise<WebhookEndpoint[]> {
  const found: WebhookEndpoint[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new QueryCommand({
        TableName: table,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :m AND begins_with(gsi1sk, :prefix)',
        ExpressionAttributeValues: { ':m': `MERCHANT#${merchantId}`, ':prefix': 'WEBHOOKENDPOINT#' },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of (page.Items ?? []) as WebhookEndpoint[]) {
      if (item.merchant_id === merchantId && subscribed(item, eventType)) found.push(item);
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return found;
}

/** The endpoint, only if it belongs to the merchant (another merchant's id reads as unknown). */
export async function getEndpoint(table: string, merchantId: string, id: string): Promise<WebhookEndpoint | undefined> {
  if (!/^we_[A-Za-z0-9]{1,64}$/.test(id)) return undefined;
  const { Item } = await dynamo().send(new GetCommand({ TableName: table, Key: endpointKey(id) }));
  const endpoint = Item as WebhookEndpoint | undefined;
  return endpoint?.merchant_id === merchantId ? endpoint : undefined;
}

/** The opened `whsec_…` secrets that have not expired, newest first (both during a roll). */
export async function signingSecrets(endpoint: WebhookEndpoint, now: Date): Promise<Secret<string>[]> {
  const live = endpoint.secrets.filter((s) => !s.expires_at || Date.parse(s.expires_at) > now.getTime());
  return Promise.all(
    live.map((s) => open<string>(s.ciphertext, { purpose: 'webhook_secret', merchantId: endpoint.merchant_id, recordId: endpoint.id })),
  );
}

/** 410 Gone: the receiver says the endpoint no longer exists, so nothing more is sent to it. */
export async function disableEndpoint(table: string, merchantId: string, id: string, reason: string, now = new Date()): Promise<void> {
  await dynamo().send(
    new UpdateCommand({
      TableName: table,
      Key: endpointKey(id),
      UpdateExpression: 'SET disabled = :t, disabled_reason = :reason, updated_at = :now',
      ConditionExpression: 'merchant_id = :m',
      ExpressionAttributeValues: { ':t': true, ':reason': reason, ':now': now.toISOString(), ':m': merchantId },
    }),
  ).catch(ignoreMissing);
}

/**
 * One more failure in a row. At `threshold` the breaker opens for `openSeconds` (and each failure while open
 * extends it): the endpoint's deliveries then wait in the slow lane. Returns whether it is open now.
 */
export async function recordFailure(table: string, endpoint: WebhookEndpoint, now: Date, threshold: number, openSeconds: number): Promise<boolean> {
  const openUntil = new Date(now.getTime() + openSeconds * 1000).toISOString();
  const out = await dynamo()
    .send(
      new UpdateCommand({
        TableName: table,
        Key: endpointKey(endpoint.id),
        UpdateExpression: 'ADD consecutive_failures :one',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':one': 1 },
        ReturnValues: 'UPDATED_NEW',
      }),
    )
    .catch(ignoreMissing);
  const failures = Number(out?.Attributes?.consecutive_failures ?? 0);
  if (failures < threshold) return false;
  await dynamo()
    .send(
      new UpdateCommand({
        TableName: table,
        Key: endpointKey(endpoint.id),
        UpdateExpression: 'SET open_until = :until',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':until': openUntil },
      }),
    )
    .catch(ignoreMissing);
  return true;
}

/** A success closes the breaker; written only when there was something to reset (a write per success is not free). */
export async function recordSuccess(table: string, endpoint: WebhookEndpoint): Promise<void> {
  if (!endpoint.consecutive_failures && !endpoint.open_until) return;
  await dynamo()
    .send(
      new UpdateCommand({
        TableName: table,
        Key: endpointKey(endpoint.id),
        UpdateExpression: 'SET consecutive_failures = :zero REMOVE open_until',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':zero': 0 },
      }),
    )
    .catch(ignoreMissing);
}

export const breakerOpen = (endpoint: WebhookEndpoint | undefined, now: Date) =>
  !!endpoint?.open_until && Date.parse(endpoint.open_until) > now.getTime();

/** A deleted endpoint is not an error for these writes: there is nothing left to update. */
function ignoreMissing(error: unknown): undefined {
  if ((error as Error).name === 'ConditionalCheckFailedException') return undefined;
  throw error;
}
