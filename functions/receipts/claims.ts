import { randomUUID } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { dynamo } from '../commons/clients';
import { CLAIM_LEASE_SECONDS, CLAIM_RETENTION_SECONDS } from './config';

/**
 * Once per (event, channel), however often the queue delivers the event's message:
 *
 *   receipt  pk RECEIPT#<evt>#<channel>  sk RECEIPT   status sending | sent | failed, TTL 30 days
 *
 * `claim` takes the item with one conditional UpdateItem: when it does not exist, when the last send failed, or
 * when a `sending` claim's lease has run out (its run died between claim and send, or between send and `sent`).
 * - sent: a duplicate after success sends nothing.
 * - failed: the send was refused or errored, so the message's retry sends again.
 * - sending within its lease: another run is sending right now (the publisher sent the message twice); this one
 *   sends nothing, and if that run fails its own message is retried.
 * A run that died after the provider accepted the message, before `sent`, leads to a second receipt once its
 * lease has passed: at-least-once, as SES and SNS offer no idempotency key.
 * Each claim carries a token, so a run overtaken after its lease cannot mark someone else's claim.
 */
export type ReceiptChannel = 'email' | 'sms';
export type ClaimStatus = 'sending' | 'sent' | 'failed';

export interface ReceiptClaim {
  event_id: string;
  merchant_id: string;
  channel: ReceiptChannel;
  status: ClaimStatus;
  attempts: number;
  claimed_at: string;
  lease_until: string;
  sent_at?: string;
  /** The provider's MessageId (SES / SNS): no PII. */
  message_id?: string;
  last_error?: string;
}

export const claimKey = (eventId: string, channel: ReceiptChannel) => ({ pk: `RECEIPT#${eventId}#${channel}`, sk: 'RECEIPT' });

export type ClaimResult = { claimed: true; token: string } | { claimed: false; status: ClaimStatus };

export class ReceiptClaims {
  constructor(private readonly table: string) {}

  async claim(eventId: string, merchantId: string, channel: ReceiptChannel, now: Date): Promise<ClaimResult> {
    const token = randomUUID();
    try {
      await dynamo().send(
        new UpdateCommand({
          TableName: this.table,
          Key: claimKey(eventId, channel),
          UpdateExpression:
            'SET #type = :type, event_id = :event, merchant_id = :merchant, channel = :channel, #status = :sending, claim_token = :token, ' +
            'claimed_at = :now, lease_until = :lease, #ttl = :ttl ADD attempts :one',
          ConditionExpression: 'attribute_not_exists(pk) OR #status = :failed OR (#status = :sending AND lease_until < :now)',
          ExpressionAttributeNames: { '#type': 'type', '#status': 'status', '#ttl': 'ttl' },
          ExpressionAttributeValues: {
            ':type': 'receipt',
            ':event': eventId,
            ':merchant': merchantId,
            ':channel': channel,
            ':sending': 'sending',
            ':failed': 'failed',
            ':token': token,
            ':now': now.toISOString(),
            ':lease': new Date(now.getTime() + CLAIM_LEASE_SECONDS * 1000).toISOString(),
            ':ttl': Math.floor(now.getTime() / 1000) + CLAIM_RETENTION_SECONDS,
            ':one': 1,
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { claimed: true, token };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const old = error.Item ? (unmarshall(error.Item) as ReceiptClaim) : undefined;
      return { claimed: false, status: old?.status ?? 'sending' };
    }
  }

  /** Marks the claim sent; false when the claim is no longer this run's (overtaken after its lease). */
  async sent(eventId: string, channel: ReceiptChannel, token: string, messageId: string, now: Date): Promise<boolean> {
    return this.finish(eventId, channel, token, { status: 'sent', sent_at: now.toISOString(), message_id: messageId });
  }

  /** Releases the claim after a failed send, so the message's retry sends again. */
  async failed(eventId: string, channel: ReceiptChannel, token: string, error: string): Promise<boolean> {
    return this.finish(eventId, channel, token, { status: 'failed', last_error: error.slice(0, 300) });
  }

  async get(eventId: string, channel: ReceiptChannel): Promise<ReceiptClaim | undefined> {
    const { Item } = await dynamo().send(new GetCommand({ TableName: this.table, Key: claimKey(eventId, channel), ConsistentRead: true }));
    return Item as ReceiptClaim | undefined;
  }

  private async finish(eventId: string, channel: ReceiptChannel, token: string, set: Record<string, unknown>): Promise<boolean> {
    const names: Record<string, string> = { '#status': 'status' };
    const values: Record<string, unknown> = { ':token': token, ':sending': 'sending' };
    const assignments = Object.entries(set).map(([field, value], i) => {
      names[`#f${i}`] = field;
      values[`:v${i}`] = value;
      return `#f${i} = :v${i}`;
    });
    try {
      await dynamo().send(
        new UpdateCommand({
          TableName: this.table,
          Key: claimKey(eventId, channel),
          UpdateExpression: `SET ${assignments.join(', ')}`,
          ConditionExpression: 'claim_token = :token AND #status = :sending',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
}
