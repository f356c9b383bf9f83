import { createHash, randomUUID } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { dynamo } from '../commons/clients';
import { open, seal } from '../commons/crypto';
import { required } from '../commons/config';
import {
  IdempotencyInProgressError,
  IdempotencyMismatchError,
  InvalidRequestError,
  PayplaneError,
} from '../commons/errors';
import { randomBase62 } from '../commons/ids';
import type { Lang } from '../commons/lang';
import { msg } from '../commons/messages';
import { Secret } from '../commons/secret';
import { errorResponse } from './errors';

/** Keys are kept a day past their first use, like Stripe's; DynamoDB TTL removes them later. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;

export interface IdempotentCall {
  merchantId: string;
  key: string;
  /** Method, resource, path parameters and canonical body: reusing a key for anything else is a mismatch. */
  fingerprint: string;
  requestId: string;
  /** How long the first request may hold the key before a retry may take it over (the function timeout). */
  lockMillis: number;
  /** The language of a stored error's message: a replay answers in the first request's language, as it answers its body. */
  lang?: Lang;
}

/** What the operation learns from its claim of the key. */
export interface Claim {
  /**
   * A secret random value fixed for the key's life and kept across takeovers: the ids of what the
   * operation creates derive from it (commons/ids.ts `idFromSeed`), so they are fixed before its first
   * side effect and a retry that takes over a dead claim finishes the same objects.
   */
  seed: string;
  /** True when this run took over the key from a run that died: what it creates may exist already. */
  resumed: boolean;
}

/**
 * Runs `operation` at most once per (merchant, Idempotency-Key) and replays its response.
 *
 * A conditional put claims the key. A duplicate that finds it claimed gets the stored response,
 * a mismatch error, or 409 while the first is still in flight. What is stored is the request's
 * final answer (`isFinal`): 2xx, card declines (402) and conflicts (409) that are not retryable.
 * Anything else releases the key so the merchant can retry, as Stripe does for requests that failed
 * validation, lost a race or hit a server error.
 */
export async function idempotent(
  call: IdempotentCall,
  operation: (claim: Claim) => Promise<APIGatewayProxyResult>,
): Promise<APIGatewayProxyResult> {
  const table = required('IDEMPOTENCY_TABLE_NAME');
  const id = `${call.merchantId}#${call.key}`;
  const owner = randomUUID();
  const now = Date.now();
  const nowSeconds = Math.floor(now / 1000);
  let claim: Claim = { seed: randomBase62(24), resumed: false };
  let previous: StoredKey | undefined;
  try {
    const put = await dynamo().send(
      new PutCommand({
        TableName: table,
        Item: {
          id,
          status: 'in_progress',
          fingerprint: call.fingerprint,
          owner,
          seed: claim.seed,
          lock_expires_at: now + call.lockMillis,
          expiration: nowSeconds + IDEMPOTENCY_TTL_SECONDS,
        },
        ConditionExpression:
          'attribute_not_exists(id) OR expiration < :nowSeconds OR (#status = :inProgress AND lock_expires_at < :now AND fingerprint = :fingerprint)',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':now': now,
          ':nowSeconds': nowSeconds,
          ':inProgress': 'in_progress',
          ':fingerprint': call.fingerprint,
        },
        ReturnValues: 'ALL_OLD',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    previous = put.Attributes as StoredKey | undefined;
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    return replay(call, id, error.Item ? (unmarshall(error.Item) as StoredKey) : undefined);
  }
  // A takeover (not a key whose day is over): keep the dead run's seed, so this run finishes its objects.
  if (previous?.status === 'in_progress' && previous.expiration >= nowSeconds && previous.seed) {
    claim = { seed: previous.seed, resumed: true };
    await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { id },
        UpdateExpression: 'SET seed = :seed',
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':seed': claim.seed, ':owner': owner },
      }),
    );
  }

  let response: APIGatewayProxyResult;
  try {
    response = await operation(claim);
  } catch (error) {
    if (!isFinal(error)) {
      await release(table, id, owner);
      throw error;
    }
    response = errorResponse(error, call.requestId, call.lang);
  }
  await dynamo().send(
    new UpdateCommand({
      TableName: table,
      Key: { id },
      UpdateExpression: 'SET #status = :completed, #response = :response REMOVE lock_expires_at',
      ConditionExpression: '#status = :inProgress AND #owner = :owner',
      ExpressionAttributeNames: { '#status': 'status', '#owner': 'owner', '#response': 'response' },
      ExpressionAttributeValues: {
        ':completed': 'completed',
        ':inProgress': 'in_progress',
        ':owner': owner,
        // Responses carry payer data: they rest encrypted like the records they describe.
        ':response': { statusCode: response.statusCode, body: await seal(new Secret(response.body), bindingOf(call, id)) },
      },
    }),
  );
  return response;
}

/**
 * An error that is the request's answer, replayed to every retry with the key: a card decline (402,
 * so a retry never authorizes the card again) or a conflict with the resource's state (409). A
 * retryable error (`PayplaneError.retryable`, e.g. a lost race) is not: the retry must run again.
 */
function isFinal(error: unknown): error is PayplaneError {
  return error instanceof PayplaneError && !error.retryable && (error.status === 402 || error.status === 409);
}

interface StoredKey {
  status: 'in_progress' | 'completed';
  fingerprint: string;
  seed?: string;
  expiration: number;
  response?: { statusCode: number; body: Uint8Array };
}

async function replay(call: IdempotentCall, id: string, item: StoredKey | undefined): Promise<APIGatewayProxyResult> {
  if (!item) throw new IdempotencyInProgressError('idempotency_key_in_use', inUseMessage(call.key));
  if (item.fingerprint !== call.fingerprint) {
    throw new IdempotencyMismatchError(
      'idempotency_key_reused',
      msg.idempotency_key_reused({ key: call.key }),
      { param: 'Idempotency-Key' },
    );
  }
  const response = item.response;
  if (item.status !== 'completed' || !response) {
    throw new IdempotencyInProgressError('idempotency_key_in_use', inUseMessage(call.key));
  }
  return {
    statusCode: response.statusCode,
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Idempotent-Replayed': 'true' },
    body: (await open<string>(response.body, bindingOf(call, id))).reveal(),
  };
}

const bindingOf = (call: IdempotentCall, id: string) => ({ purpose: 'idempotent-response', merchantId: call.merchantId, recordId: id });

const inUseMessage = (key: string) => msg.idempotency_key_in_use({ key });

async function release(table: string, id: string, owner: string): Promise<void> {
  await dynamo()
    .send(
      new DeleteCommand({
        TableName: table,
        Key: { id },
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': owner },
      }),
    )
    .catch((error: unknown) => {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    });
}

/** Stripe accepts keys of up to 255 characters; printable ASCII keeps them loggable and comparable. */
export function validateKey(key: string): string {
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw new InvalidRequestError(
      'idempotency_key_invalid',
      msg.idempotency_key_invalid({ length: key.length }),
      { param: 'Idempotency-Key' },
    );
  }
  return key;
}

/**
 * What a key is bound to. The path parameters matter: the resource (`/v1/orders/{id}/confirm`) is the
 * same for every order, and a key reused on another order must be refused, never answered with the
 * first order's response.
 */
export function fingerprint(method: string, resource: string, params: Record<string, string>, body: unknown): string {
  return createHash('sha256').update(`${method} ${resource}\n${canonicalJson(params)}\n${canonicalJson(body)}`).digest('hex');
}

/**
 * JSON with sorted object keys, so field order in the request body does not matter. Iterative, with
 * an explicit stack: a body is input, and nothing on the request path recurses over input.
 */
export function canonicalJson(value: unknown): string {
  let out = '';
  // Pending work, last first: a value still to write, or text that closes or separates one.
  const stack: ({ text: string } | { value: unknown })[] = [{ value }];
  for (let item = stack.pop(); item; item = stack.pop()) {
    if ('text' in item) {
      out += item.text;
      continue;
    }
    const v = item.value;
    if (Array.isArray(v)) {
      out += '[';
      stack.push({ text: ']' });
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push({ value: v[i] });
        if (i > 0) stack.push({ text: ',' });
      }
    } else if (v && typeof v === 'object') {
      out += '{';
      stack.push({ text: '}' });
      const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, inner] = entries[i]!;
        stack.push({ value: inner });
        stack.push({ text: `${i > 0 ? ',' : ''}${JSON.stringify(k)}:` });
      }
    } else {
      out += JSON.stringify(v) ?? 'null';
    }
  }
  return out;
}
