import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { call, cloud, newMerchant } from './support';
import { CARDS, confirm, newOrder } from './payments-support';

/**
 * The ReconcilePayments schedule through the local cloud: the template's rule fired over the control plane
 * runs the bundled function with the template's environment. An order waiting for 3-D Secure is aged past
 * the grace period in the table (a test cannot wait 2 minutes); the channel still waits for the payer, so
 * the run leaves it unresolved and moves it to the back of the in-flight index.
 */
describe('ReconcilePayments schedule', () => {
  it('asks the channel about an aged in-flight order and requeues it while the channel still waits', async () => {
    // Prepare
    const c = cloud();
    const db = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: c.region, endpoint: c.endpoints.dynamodb, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
    );
    const key = { pk: '', sk: 'ORDER' };
    const { key: apiKey } = await newMerchant();
    const id = await newOrder(apiKey);
    key.pk = `ORDER#${id}`;
    const challenged = await confirm(apiKey, id, CARDS.threeDSecure);
    expect(challenged.body.status, challenged.text).toBe('requires_action');
    const aged = `${new Date(Date.now() - 10 * 60_000).toISOString()}#${id}`;
    await db.send(new UpdateCommand({ TableName: c.tables.main!, Key: key, UpdateExpression: 'SET gsi2sk = :aged', ExpressionAttributeValues: { ':aged': aged } }));
    const admin = c.endpoints.admin;
    const { rules } = (await (await fetch(`${admin}/__schedules`)).json()) as { rules: Array<{ logicalId: string }> };
    const rule = rules.find((r) => r.logicalId.startsWith('ReconcilePaymentsSchedule'));
    // Act
    const started = new Date().toISOString();
    const trigger = await fetch(`${admin}/__schedules/${rule!.logicalId}/trigger`, { method: 'POST' });
    // Assess
    expect(trigger.status).toBe(200);
    const run = (await trigger.json()) as { results: Array<{ ok: boolean; error?: string; payload?: { settled: number; unresolved: number; failed: unknown[] } }> };
    expect(run.results).toHaveLength(1);
    expect(run.results[0]!.error).toBeUndefined();
    expect(run.results[0]!.payload).toMatchObject({ unresolved: expect.any(Number), failed: [] });
    expect(run.results[0]!.payload!.unresolved).toBeGreaterThanOrEqual(1);
    const { Item } = await db.send(new GetCommand({ TableName: c.tables.main!, Key: key, ConsistentRead: true }));
    expect(Item).toMatchObject({ status: 'requires_action', gsi2pk: expect.stringMatching(/^INFLIGHT#/) });
    expect(Item!.gsi2sk > started).toBe(true);
    // Closing voids the attempt and takes the order out of the index.
    expect((await call('POST', `/v1/orders/${id}/close`, { key: apiKey })).body.status).toBe('closed');
  });
});
