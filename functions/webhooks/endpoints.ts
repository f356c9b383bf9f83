import { randomBytes } from 'node:crypto';
import { msg } from '../commons/messages';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { commitAudited, type AuditChange, type TransactItems } from '../audit/append';
import type { AuditContext } from '../audit/context';
import { mask } from '../audit/mask';
import { dynamo } from '../commons/clients';
import { open, seal, type Binding } from '../commons/crypto';
import { ContendedError, InvalidRequestError } from '../commons/errors';
import { Secret } from '../commons/secret';

/**
 * Webhook endpoints in the single table (docs/webhooks.md):
 *   endpoint  pk WEBHOOKENDPOINT#<we_id>                 sk ENDPOINT
 *             gsi1 MERCHANT#<merchant> / WEBHOOKENDPOINT#<created_at>#<we_id>   (list, newest first; fan-out)
 *   count     pk MERCHANT#<merchant>#WEBHOOKENDPOINTS   sk COUNT   {endpoints}: the per-merchant cap, kept in the
 *             same transaction as every create and delete, so two concurrent creates cannot both take the last slot.
 * Every read takes the merchant id and never returns another merchant's endpoint.
 *
 * The signing secrets are `whsec_<base64 of 32 random bytes>` (Standard Webhooks allows 24-64 bytes), each sealed
 * with commons/crypto.ts (purpose 'webhook_secret', bound to the endpoint's id). Newest first: the current one, and
 * during a roll the previous one with its `expires_at`. The plaintext exists only in the response that creates it
 * and, opened by `signingSecrets`, in the deliverer that signs with it.
 */

/** Stripe's cap; it bounds the fan-out of one event and the list, which is never paginated by the deliverer. */
export const MAX_ENDPOINTS_PER_MERCHANT = 16;
const SECRET_BYTES = 32;
export const SECRET_PURPOSE = 'webhook_secret';

export interface SealedSecret {
  ciphertext: Uint8Array;
  /** Set on a rolled-away secret: it signs until then. The current secret has none. */
  expires_at?: string;
  /** The roll that made it (ApiRequest.newId('roll'): fixed by the request's Idempotency-Key). */
  roll_id?: string;
}

export interface WebhookEndpoint {
  id: string;
  merchant_id: string;
  url: string;
  /** Event types (EVENT_TYPES), or `['*']` for all of them. */
  enabled_events: string[];
  description?: string;
  disabled: boolean;
  /** Why it was disabled: by the merchant, or by the deliverer (410 Gone). */
  disabled_reason?: string;
  created_at: string;
  updated_at: string;
  /** Newest first, at most 2. */
  secrets: SealedSecret[];
  /** The deliverer's circuit breaker: failures in a row, and until when deliveries wait. */
  consecutive_failures: number;
  open_until?: string;
}

export type EndpointChanges = Partial<Pick<WebhookEndpoint, 'url' | 'enabled_events' | 'description' | 'disabled'>>;

export const endpointKey = (id: string) => ({ pk: `WEBHOOKENDPOINT#${id}`, sk: 'ENDPOINT' });
const listKey = (e: Pick<WebhookEndpoint, 'merchant_id' | 'created_at' | 'id'>) => ({
  gsi1pk: `MERCHANT#${e.merchant_id}`,
  gsi1sk: `WEBHOOKENDPOINT#${e.created_at}#${e.id}`,
});
const countKey = (merchantId: string) => ({ pk: `MERCHANT#${merchantId}#WEBHOOKENDPOINTS`, sk: 'COUNT' });

const secretBinding = (e: Pick<WebhookEndpoint, 'merchant_id' | 'id'>): Binding => ({ purpose: SECRET_PURPOSE, merchantId: e.merchant_id, recordId: e.id });

/** A new signing secret: `whsec_` + base64 of 32 CSPRNG bytes, the form `standardwebhooks` takes. */
export function newSigningSecret(): Secret<string> {
  return new Secret(`whsec_${randomBytes(SECRET_BYTES).toString('base64')}`);
}

/**
 * Writes a new endpoint with a new secret and takes one of the merchant's slots, in one transaction. Returns the
 * endpoint and its secret (to show once). An endpoint of that id that exists already is the work of a run that
 * died after writing (the id comes from the Idempotency-Key): it is returned with its own secret, never a second one.
 */
export async function createEndpoint(
  table: string,
  input: { id: string; merchantId: string; url: string; enabledEvents: string[]; description?: string },
  now: Date,
  by: AuditContext,
): Promise<{ endpoint: WebhookEndpoint; secret: Secret<string> }> {
  const at = now.toISOString();
  const secret = newSigningSecret();
  const endpoint: WebhookEndpoint = {
    id: input.id,
    merchant_id: input.merchantId,
    url: input.url,
    enabled_events: input.enabledEvents,
    description: input.description,
    disabled: false,
    created_at: at,
    updated_at: at,
    secrets: [{ ciphertext: await seal(secret, secretBinding({ id: input.id, merchant_id: input.merchantId })) }],
    consecutive_failures: 0,
  };
  const result = await commitAudited(
    auditDeps(table, now),
    [
      {
        Put: {
          TableName: table,
          Item: { ...endpointKey(endpoint.id), type: 'webhook_endpoint', ...listKey(endpoint), ...endpoint },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      {
        Update: {
          TableName: table,
          Key: countKey(input.merchantId),
          UpdateExpression: 'ADD endpoints :one',
          ConditionExpression: 'attribute_not_exists(endpoints) OR endpoints < :max',
          ExpressionAttributeValues: { ':one': 1, ':max': MAX_ENDPOINTS_PER_MERCHANT },
        },
      },
    ],
    audited('webhook_endpoint.created', endpoint, undefined, endpoint),
    by,
  );
  if (result.committed) return { endpoint, secret };
  const [written, count] = result.reasons;
  if (written === 'ConditionalCheckFailed') {
    const existing = await getEndpoint(table, input.merchantId, input.id);
    if (!existing) throw new Error(`Webhook endpoint ${input.id} exists, but not for merchant ${input.merchantId}`); // cannot happen: ids are 143 random bits
    const current = existing.secrets.find((s) => !s.expires_at) ?? existing.secrets[0]!;
    return { endpoint: existing, secret: await open<string>(current.ciphertext, secretBinding(existing)) };
  }
  if (count === 'ConditionalCheckFailed') {
    throw new InvalidRequestError(
      'webhook_endpoint_limit',
      msg.webhook_endpoint_limit({ limit: MAX_ENDPOINTS_PER_MERCHANT }),
    );
  }
  throw contended(`Another request changed this account's webhook endpoints at the same time (${result.reasons.join(', ')}). Retry with the same Idempotency-Key.`);
}

const auditDeps = (table: string, now?: Date) => ({ db: dynamo(), tableName: table, now: now && (() => now) });

/** What the audit trail keeps of an endpoint: its configuration, never its secrets (sealed or not). */
const auditView = (e: WebhookEndpoint) =>
  mask({ url: e.url, enabled_events: e.enabled_events, description: e.description ?? null, disabled: e.disabled, disabled_reason: e.disabled_reason ?? null });

function audited(action: AuditChange['action'], e: WebhookEndpoint, before?: unknown, after?: unknown): AuditChange {
  return {
    action,
    merchantId: e.merchant_id,
    target: { type: 'webhook_endpoint', id: e.id },
    ...(before !== undefined ? { before } : {}),
    ...(after !== undefined ? { after: after === e ? auditView(e) : after } : {}),
  };
}

const contended = (message: string) => new ContendedError('webhook_endpoint_contended', message);

/** The endpoint, if it exists and belongs to the merchant (strongly consistent). */
export async function getEndpoint(table: string, merchantId: string, id: string): Promise<WebhookEndpoint | undefined> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: table, Key: endpointKey(id), ConsistentRead: true }));
  return Item && Item.merchant_id === merchantId ? fromItem(Item) : undefined;
}

/** The merchant's endpoints, newest first, after a cursor endpoint. */
export async function listEndpoints(
  table: string,
  merchantId: string,
  opts: { limit: number; after?: WebhookEndpoint },
): Promise<{ endpoints: WebhookEndpoint[]; hasMore: boolean }> {
  const endpoints = await queryEndpoints(table, merchantId, {
    newestFirst: true,
    limit: opts.limit + 1,
    after: opts.after && { ...endpointKey(opts.after.id), ...listKey(opts.after) },
  });
  return { endpoints: endpoints.slice(0, opts.limit), hasMore: endpoints.length > opts.limit };
}

/**
 * The merchant's endpoints that receive `eventType`: not disabled, subscribed to it or to `*`. Read from gsi1,
 * which is eventually consistent: an endpoint registered a moment before an event may miss that event.
 */
export async function enabledEndpoints(table: string, merchantId: string, eventType: string): Promise<WebhookEndpoint[]> {
  // The cap keeps this to one page of at most 16 items; the loop is for an index page cut short by size.
  const all = await queryEndpoints(table, merchantId, {});
  return all.filter((e) => !e.disabled && subscribes(e, eventType));
}

/** The merchant's endpoints from gsi1, page after page until `limit` (or all of them). */
async function queryEndpoints(
  table: string,
  merchantId: string,
  opts: { newestFirst?: boolean; limit?: number; after?: Record<string, unknown> },
): Promise<WebhookEndpoint[]> {
  const out: WebhookEndpoint[] = [];
  let startKey = opts.after;
  do {
    const page = await dynamo().send(
      new QueryCommand({
        TableName: table,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :pk AND gsi1sk BETWEEN :lower AND :upper',
        ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}`, ':lower': 'WEBHOOKENDPOINT#', ':upper': 'WEBHOOKENDPOINT$' },
        ScanIndexForward: !opts.newestFirst,
        ExclusiveStartKey: startKey,
        Limit: opts.limit,
      }),
    );
    out.push(...(page.Items ?? []).map(fromItem));
    startKey = page.LastEvaluatedKey;
  } while (startKey && (opts.limit === undefined || out.length < opts.limit));
  return out;
}

export function subscribes(endpoint: Pick<WebhookEndpoint, 'enabled_events'>, eventType: string): boolean {
  return endpoint.enabled_events.includes('*') || endpoint.enabled_events.includes(eventType);
}

/**
 * The secrets that sign a delivery at `now`, opened, newest first: the current one, and a rolled-away one until
 * its `expires_at`. The deliverer sends one `v1,<sig>` per secret.
 */
export async function signingSecrets(endpoint: WebhookEndpoint, now: Date): Promise<Secret<string>[]> {
  const live = endpoint.secrets.filter((s) => !s.expires_at || Date.parse(s.expires_at) > now.getTime());
  return Promise.all(live.map((s) => open<string>(s.ciphertext, secretBinding(endpoint))));
}

/**
 * Applies the merchant's changes. `disabled: false` also closes the circuit breaker (failures reset, no
 * `open_until`), so a re-enabled endpoint is tried at once. Undefined when there is no such endpoint.
 */
export async function updateEndpoint(
  table: string,
  merchantId: string,
  id: string,
  changes: EndpointChanges,
  now: Date,
  by: AuditContext,
): Promise<WebhookEndpoint | undefined> {
  const set: Record<string, unknown> = { updated_at: now.toISOString() };
  const remove: string[] = [];
  for (const field of ['url', 'enabled_events', 'description'] as const) if (changes[field] !== undefined) set[field] = changes[field];
  if (changes.disabled === true) {
    set.disabled = true;
    set.disabled_reason = 'Disabled by the merchant (POST /v1/webhook_endpoints/{id} with disabled: true).';
  } else if (changes.disabled === false) {
    set.disabled = false;
    set.consecutive_failures = 0;
    remove.push('disabled_reason', 'open_until');
  }
  // Read, then written on condition that it is still what was read: the audit entry's before is exact.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const endpoint = await getEndpoint(table, merchantId, id);
    if (!endpoint) return undefined;
    const updated = await updateAudited(table, endpoint, set, remove, 'webhook_endpoint.updated', by, now);
    if (updated) return updated;
  }
  throw contended(`Webhook endpoint '${id}' kept changing while it was being updated. Retry with the same Idempotency-Key.`);
}

/**
 * SET `set`, REMOVE `remove` on `endpoint` as it was read (its updated_at), with the audit entry of `action`, in one
 * transaction. Undefined when the endpoint changed or went meanwhile (read it again).
 */
async function updateAudited(
  table: string,
  endpoint: WebhookEndpoint,
  set: Record<string, unknown>,
  remove: string[],
  action: AuditChange['action'],
  by: AuditContext,
  now: Date,
  audit: { before?: unknown; after?: unknown } = {},
): Promise<WebhookEndpoint | undefined> {
  const after = { ...endpoint, ...set } as WebhookEndpoint;
  for (const field of remove) delete (after as unknown as Record<string, unknown>)[field];
  const expression = updateExpression(set, remove, endpoint.merchant_id, endpoint.updated_at);
  const result = await commitAudited(
    auditDeps(table, now),
    [{ Update: { TableName: table, Key: endpointKey(endpoint.id), ...expression } }],
    audited(action, endpoint, audit.before ?? auditView(endpoint), audit.after ?? auditView(after)),
    by,
  );
  if (result.committed) return after;
  if (result.reasons[0] === 'ConditionalCheckFailed') return undefined;
  throw contended(`Webhook endpoint '${endpoint.id}' changed at the same time (${result.reasons.join(', ')}). Retry the request.`);
}

/**
 * Disables an endpoint on the deliverer's behalf (it answered 410 Gone): no more deliveries until the merchant
 * re-enables it. A deleted endpoint stays deleted.
 */
export async function disableEndpoint(table: string, merchantId: string, id: string, reason: string, now = new Date()): Promise<void> {
  await update(table, merchantId, id, { disabled: true, disabled_reason: reason, updated_at: now.toISOString() }, []);
}

/**
 * A new current secret; the current one keeps signing for `expiresInSeconds` (0: stops at once). A secret rolled
 * away earlier is dropped even if it has not expired: at most two sign at a time. Returns the new secret (to show
 * once), or undefined when there is no such endpoint.
 *
 * `rollId` names the roll. When the current secret carries it, a run of the same request died after writing it:
 * its secret was never shown to anyone, so this run replaces it and keeps the previous secret as that run left
 * it. Rolling it away instead would drop the secret the merchant's receiver still verifies with.
 */
export async function rollSecret(
  table: string,
  merchantId: string,
  id: string,
  expiresInSeconds: number,
  now: Date,
  rollId: string | undefined,
  by: AuditContext,
): Promise<{ endpoint: WebhookEndpoint; secret: Secret<string> } | undefined> {
  const endpoint = await getEndpoint(table, merchantId, id);
  if (!endpoint) return undefined;
  const secret = newSigningSecret();
  const sealed: SealedSecret = { ciphertext: await seal(secret, secretBinding(endpoint)), roll_id: rollId };
  let previous: SealedSecret[];
  if (rollId && endpoint.secrets[0]?.roll_id === rollId) {
    previous = endpoint.secrets.slice(1);
  } else {
    const current = endpoint.secrets.find((s) => !s.expires_at) ?? endpoint.secrets[0];
    const expiresAt = new Date(now.getTime() + expiresInSeconds * 1000).toISOString();
    previous = expiresInSeconds > 0 && current ? [{ ciphertext: current.ciphertext, expires_at: expiresAt }] : [];
  }
  const secrets: SealedSecret[] = [sealed, ...previous];
  // Conditional on the endpoint as read: two concurrent rolls must not each keep a secret the other dropped.
  const expiring = (list: SealedSecret[]) => ({ previous_secret_expires_at: list.find((x) => x.expires_at)?.expires_at ?? null });
  const rolled = await updateAudited(table, endpoint, { secrets, updated_at: now.toISOString() }, [], 'webhook_endpoint.secret_rolled', by, now, {
    before: expiring(endpoint.secrets),
    after: expiring(secrets),
  });
  if (!rolled) {
    throw new ContendedError('webhook_endpoint_contended', `Webhook endpoint '${id}' changed while its secret was being rolled. Retry with the same Idempotency-Key.`);
  }
  return { endpoint: rolled, secret };
}

/** Deletes the endpoint and frees its slot. False when there is no such endpoint. */
export async function deleteEndpoint(table: string, merchantId: string, id: string, by: AuditContext): Promise<boolean> {
  const endpoint = await getEndpoint(table, merchantId, id);
  if (!endpoint) return false;
  const items: TransactItems = [
    {
      Delete: {
        TableName: table,
        Key: endpointKey(id),
        ConditionExpression: 'merchant_id = :merchant',
        ExpressionAttributeValues: { ':merchant': merchantId },
      },
    },
    { Update: { TableName: table, Key: countKey(merchantId), UpdateExpression: 'ADD endpoints :minus', ExpressionAttributeValues: { ':minus': -1 } } },
  ];
  const result = await commitAudited(auditDeps(table), items, audited('webhook_endpoint.deleted', endpoint, auditView(endpoint)), by);
  if (result.committed) return true;
  if (result.reasons[0] === 'ConditionalCheckFailed') return false; // deleted meanwhile
  throw contended(`Another request changed this account's webhook endpoints at the same time (${result.reasons.join(', ')}). Retry the request.`);
}

/** SET `set`, REMOVE `remove` on the merchant's endpoint (the deliverer's writes: not a merchant's change, not audited). */
async function update(table: string, merchantId: string, id: string, set: Record<string, unknown>, remove: string[]): Promise<WebhookEndpoint | undefined> {
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({ TableName: table, Key: endpointKey(id), ...updateExpression(set, remove, merchantId), ReturnValues: 'ALL_NEW' }),
    );
    return fromItem(Attributes!);
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
}

/** The update's expression: on the merchant's endpoint only, and only if `updated_at` is still `seen`, when given. */
function updateExpression(set: Record<string, unknown>, remove: string[], merchantId: string, seen?: string) {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = { ':merchant': merchantId };
  const assignments = Object.entries(set).map(([field, value], i) => {
    names[`#s${i}`] = field;
    values[`:s${i}`] = value;
    return `#s${i} = :s${i}`;
  });
  const removals = remove.map((field, i) => {
    names[`#r${i}`] = field;
    return `#r${i}`;
  });
  let condition = 'merchant_id = :merchant';
  if (seen) {
    names['#seen'] = 'updated_at';
    values[':seen'] = seen;
    condition += ' AND #seen = :seen';
  }
  return {
    UpdateExpression: `SET ${assignments.join(', ')}${removals.length ? ` REMOVE ${removals.join(', ')}` : ''}`,
    ConditionExpression: condition,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}

/** The endpoint of a raw table item (what the deliverer's BatchGetItem returns), without its keys. */
export function fromItem(item: Record<string, unknown>): WebhookEndpoint {
  const { pk, sk, type, gsi1pk, gsi1sk, ...endpoint } = item;
  return endpoint as unknown as WebhookEndpoint;
}

// ─── The deliverer's circuit breaker ──────────────────────────────────────────────────────────────
// consecutive_failures and open_until are written by the deliverer only; the merchant's `disabled: false` resets them.

export const breakerOpen = (endpoint: Pick<WebhookEndpoint, 'open_until'> | undefined, now: Date) =>
  !!endpoint?.open_until && Date.parse(endpoint.open_until) > now.getTime();

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
    .catch(ignoreDeleted);
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
    .catch(ignoreDeleted);
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
    .catch(ignoreDeleted);
}

/** An endpoint deleted meanwhile is not an error for the breaker's writes: there is nothing left to update. */
function ignoreDeleted(error: unknown): undefined {
  if (error instanceof ConditionalCheckFailedException) return undefined;
  throw error;
}
