import { join } from 'node:path';
import { DynamoDBClient, PutItemCommand, QueryCommand, TransactWriteItemsCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { indexWrites, writeUnits } from '../../bench/cost/dynamodb';
import { startLocalCloud, type LocalCloud } from '../../local/cloud';

/**
 * Issue 12 §1: the bench's DynamoDB recorder in the local cloud's proxy (local/dynamodb-recorder.ts), on the fixture
 * assembly's table (gsi1 ALL). It keeps each request with the items before and after and what a read evaluated,
 * and the caller still gets exactly the answer it asked for.
 */
const FIXTURE = join(import.meta.dirname, 'fixtures', 'local-cloud');

let cloud: LocalCloud;
let db: DynamoDBClient;
let table: string;

beforeAll(async () => {
  process.env.PAYPLANE_DYNAMODB_RECORDER = '1';
  try {
    cloud = await startLocalCloud({ assemblyDir: FIXTURE, port: 0, inMemory: true, quiet: true, schedules: false, seed: false, dynamodbEndpoint: inject('localServices').endpoints.dynamodb });
  } finally {
    delete process.env.PAYPLANE_DYNAMODB_RECORDER;
  }
  table = cloud.tables.byLogicalId.MainTable74195DAB!;
  db = new DynamoDBClient({ endpoint: cloud.endpoints.dynamodb, region: cloud.region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
});
afterAll(async () => {
  await cloud?.stop();
});

describe('the DynamoDB recorder', () => {
  it('records writes with their items before and after, failed conditions, transactions and what a Query evaluated', async () => {
    // Prepare
    const recorder = cloud.dynamodbRecorder!;
    const pk = `REC#${Date.now()}`;
    recorder.start();
    // Act
    const put = await db.send(new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, sk: { S: 'A' }, gsi1pk: { S: pk }, gsi1sk: { S: '1' }, note: { S: 'x' } } }));
    const update = await db.send(
      new UpdateItemCommand({ TableName: table, Key: { pk: { S: pk }, sk: { S: 'A' } }, UpdateExpression: 'SET gsi1sk = :s', ExpressionAttributeValues: { ':s': { S: '2' } }, ReturnConsumedCapacity: 'TOTAL' }),
    );
    const refused = await db
      .send(new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, sk: { S: 'A' } }, ConditionExpression: 'attribute_not_exists(pk)' }))
      .catch((e: Error) => e.name);
    await db.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: table, Item: { pk: { S: pk }, sk: { S: 'B' }, gsi1pk: { S: pk }, gsi1sk: { S: '3' } } } },
          { Update: { TableName: table, Key: { pk: { S: pk }, sk: { S: 'A' } }, UpdateExpression: 'SET note = :n', ExpressionAttributeValues: { ':n': { S: 'yy' } } } },
        ],
      }),
    );
    const query = await db.send(
      new QueryCommand({ TableName: table, IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :p', FilterExpression: 'note = :none', ExpressionAttributeValues: { ':p': { S: pk }, ':none': { S: 'none' } } }),
    );
    const calls = recorder.stop();
    await db.send(new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, sk: { S: 'C' } } }));

    // Assess: the callers got what they asked for
    expect(put.ConsumedCapacity).toBeUndefined();
    expect(update.ConsumedCapacity?.CapacityUnits).toBeGreaterThan(0);
    expect(refused).toBe('ConditionalCheckFailedException');
    expect(query.Items).toEqual([]);
    // …and the record has every request, none after stop()
    expect(calls.map((c) => [c.operation, c.error])).toEqual([
      ['PutItem', undefined],
      ['UpdateItem', undefined],
      ['PutItem', 'ConditionalCheckFailedException'],
      ['TransactWriteItems', undefined],
      ['Query', undefined],
    ]);
    expect(recorder.stop()).toEqual([]);
    const [created, moved, failed, transaction, read] = calls;
    expect(created!.writes[0]!.before).toBeUndefined();
    expect(created!.writes[0]!.after?.note).toEqual({ S: 'x' });
    // The update moved the item's gsi1 key: a delete and a put in the index.
    expect(indexWrites(moved!.writes[0]!, await recorder.describe(table))).toEqual([{ index: 'gsi1', change: 'key', units: 2, writes: 2 }]);
    expect(failed!.writes[0]!.after).toEqual(failed!.writes[0]!.before);
    expect(transaction!.transactional).toBe(true);
    expect(transaction!.writes.map((w) => [w.kind, w.after?.sk?.S, w.after?.note?.S])).toEqual([
      ['Put', 'B', undefined],
      ['Update', 'A', 'yy'],
    ]);
    expect(writeUnits({ transactional: true, succeeded: true, actions: transaction!.writes }, { [table]: await recorder.describe(table) })).toMatchObject({ table: 4 });
    // The filter matched nothing, but DynamoDB evaluated (and bills) both items of the key range.
    expect(read!.reads[0]!.items.map((i) => i?.sk?.S).sort()).toEqual(['A', 'B']);
    expect(transaction!.consumed.length).toBeGreaterThan(0);
  });
});
