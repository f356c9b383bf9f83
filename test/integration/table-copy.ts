import { CreateTableCommand, DescribeTableCommand, type GlobalSecondaryIndexDescription } from '@aws-sdk/client-dynamodb';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../../functions/commons/clients';
import { randomBase62 } from '../../functions/commons/ids';

/**
 * An empty table with the keys and indexes of one of the template's (DynamoDB Local ignores TTL settings, so
 * none are copied): for a case that must see every item in the table, which the shared tables never are.
 */
export async function copyOfTable(source: string, prefix: string): Promise<string> {
  const { Table } = await dynamo().send(new DescribeTableCommand({ TableName: source }));
  const name = `${prefix}-${randomBase62(10)}`;
  await dynamo().send(
    new CreateTableCommand({
      TableName: name,
      KeySchema: Table!.KeySchema,
      AttributeDefinitions: Table!.AttributeDefinitions,
      BillingMode: 'PAY_PER_REQUEST',
      GlobalSecondaryIndexes: Table!.GlobalSecondaryIndexes?.map((g: GlobalSecondaryIndexDescription) => ({ IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection })),
    }),
  );
  return name;
}

/** Every item of a table, consistently read. */
export async function scanAll(table: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(new ScanCommand({ TableName: table, ExclusiveStartKey: start, ConsistentRead: true }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}
