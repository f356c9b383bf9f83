import { DescribeTableCommand, DynamoDBClient, GetItemCommand, QueryCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';

/**
 * The bench's record of the DynamoDB requests actually made (issue 12 §1), kept by the IAM proxy in front of DynamoDB
 * Local while `start()`ed: each data-plane request with its caller, outcome and DynamoDB Local's own ConsumedCapacity,
 * every written item before and after (read straight from DynamoDB Local, so index key changes and sizes are exact),
 * and the items each read touched in full (a Query is re-run without its filter and projection: DynamoDB bills what
 * it evaluated). Local cloud only: no function bundle imports local/. Images are exact at concurrency 1; a concurrent
 * writer between the request and its follow-up read would blur them.
 */

type Item = Record<string, AttributeValue>;
type Json = Record<string, any>;

export interface RecordedCall {
  operation: string;
  caller: string;
  /** The error's type (`ConditionalCheckFailedException`, `TransactionCanceledException`…) when it failed. */
  error?: string;
  transactional: boolean;
  writes: { kind: 'Put' | 'Update' | 'Delete' | 'ConditionCheck'; table: string; before?: Item; after?: Item }[];
  reads: { table: string; index?: string; consistent: boolean; perItem: boolean; items: (Item | undefined)[] }[];
  /** DynamoDB Local's answer to ReturnConsumedCapacity INDEXES, for the comparison. */
  consumed: Json[];
}

export interface TableDescription {
  keys: string[];
  indexes: { name: string; keys: string[]; projection: 'ALL' | 'KEYS_ONLY' | 'INCLUDE'; include?: string[] }[];
}

const WRITES: Record<string, true> = { PutItem: true, UpdateItem: true, DeleteItem: true, TransactWriteItems: true, BatchWriteItem: true };
const READS: Record<string, true> = { GetItem: true, BatchGetItem: true, TransactGetItems: true, Query: true, Scan: true };

export class DynamoDbRecorder {
  readonly calls: RecordedCall[] = [];
  private recording = false;
  private readonly db: DynamoDBClient;
  private readonly tables = new Map<string, Promise<TableDescription>>();

  constructor(endpoint: string, region: string) {
    this.db = new DynamoDBClient({ endpoint, region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  }

  start(): void {
    this.recording = true;
  }

  stop(): RecordedCall[] {
    this.recording = false;
    return this.calls.splice(0);
  }

  get active(): boolean {
    return this.recording;
  }

  /** Key schema and index projections, as DynamoDB Local holds them (created from the template). */
  describe(table: string): Promise<TableDescription> {
    let d = this.tables.get(table);
    if (!d) {
      d = this.db.send(new DescribeTableCommand({ TableName: table })).then(({ Table: t }) => ({
        keys: (t?.KeySchema ?? []).map((k) => k.AttributeName!),
        indexes: (t?.GlobalSecondaryIndexes ?? []).map((i) => ({
          name: i.IndexName!,
          keys: (i.KeySchema ?? []).map((k) => k.AttributeName!),
          projection: (i.Projection?.ProjectionType ?? 'ALL') as 'ALL' | 'KEYS_ONLY' | 'INCLUDE',
          include: i.Projection?.NonKeyAttributes,
        })),
      }));
      this.tables.set(table, d);
    }
    return d;
  }

  handles(operation: string): boolean {
    return this.recording && (WRITES[operation] === true || READS[operation] === true);
  }

  /** Runs `send` (the forwarded request, with ReturnConsumedCapacity INDEXES) between the before and after images. */
  async around(operation: string, caller: string, input: Json, send: (input: Json) => Promise<{ status: number; body: Json }>): Promise<{ status: number; body: Json }> {
    const targets = WRITES[operation] ? await this.writeTargets(operation, input) : [];
    const before = await Promise.all(targets.map((t) => this.get(t.table, t.key)));
    const response = await send({ ...input, ReturnConsumedCapacity: 'INDEXES' });
    const error = response.status === 200 ? undefined : String(response.body.__type ?? 'Error').replace(/^.*#/, '');
    const after = error ? before : await Promise.all(targets.map((t) => this.get(t.table, t.key)));
    const call: RecordedCall = {
      operation,
      caller,
      error,
      transactional: operation.startsWith('Transact'),
      writes: targets.map((t, i) => ({ kind: t.kind, table: t.table, before: before[i], after: after[i] })),
      reads: READS[operation] && !error ? await this.reads(operation, input) : [],
      consumed: [response.body.ConsumedCapacity ?? []].flat(),
    };
    this.calls.push(call);
    return response;
  }

  private async writeTargets(operation: string, input: Json) {
    const targets: { kind: RecordedCall['writes'][number]['kind']; table: string; key: Item }[] = [];
    const keyOf = async (table: string, item: Item) => {
      const { keys } = await this.describe(table);
      return Object.fromEntries(keys.map((k) => [k, item[k]!]));
    };
    if (operation === 'PutItem') targets.push({ kind: 'Put', table: input.TableName, key: await keyOf(input.TableName, input.Item) });
    if (operation === 'UpdateItem') targets.push({ kind: 'Update', table: input.TableName, key: input.Key });
    if (operation === 'DeleteItem') targets.push({ kind: 'Delete', table: input.TableName, key: input.Key });
    if (operation === 'TransactWriteItems') {
      for (const t of input.TransactItems ?? []) {
        if (t.Put) targets.push({ kind: 'Put', table: t.Put.TableName, key: await keyOf(t.Put.TableName, t.Put.Item) });
        if (t.Update) targets.push({ kind: 'Update', table: t.Update.TableName, key: t.Update.Key });
        if (t.Delete) targets.push({ kind: 'Delete', table: t.Delete.TableName, key: t.Delete.Key });
        if (t.ConditionCheck) targets.push({ kind: 'ConditionCheck', table: t.ConditionCheck.TableName, key: t.ConditionCheck.Key });
      }
    }
    if (operation === 'BatchWriteItem') {
      for (const [table, requests] of Object.entries((input.RequestItems ?? {}) as Record<string, Json[]>)) {
        for (const r of requests) {
          if (r.PutRequest) targets.push({ kind: 'Put', table, key: await keyOf(table, r.PutRequest.Item) });
          if (r.DeleteRequest) targets.push({ kind: 'Delete', table, key: r.DeleteRequest.Key });
        }
      }
    }
    return targets;
  }

  private async get(table: string, key: Item): Promise<Item | undefined> {
    return (await this.db.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item;
  }

  private async reads(operation: string, input: Json): Promise<RecordedCall['reads']> {
    const consistent = input.ConsistentRead === true;
    if (operation === 'GetItem') return [{ table: input.TableName, consistent, perItem: true, items: [await this.get(input.TableName, input.Key)] }];
    if (operation === 'BatchGetItem') {
      return Promise.all(
        Object.entries((input.RequestItems ?? {}) as Record<string, Json>).map(async ([table, r]) => ({
          table,
          consistent: r.ConsistentRead === true,
          perItem: true,
          items: await Promise.all((r.Keys as Item[]).map((k) => this.get(table, k))),
        })),
      );
    }
    if (operation === 'TransactGetItems') {
      return Promise.all((input.TransactItems as Json[]).map(async (t) => ({ table: t.Get.TableName, consistent: true, perItem: true, items: [await this.get(t.Get.TableName, t.Get.Key)] })));
    }
    // Query / Scan: what DynamoDB evaluated is the same request without filter, projection or Select.
    const { FilterExpression, ProjectionExpression, Select, AttributesToGet, ReturnConsumedCapacity, ...rest } = input;
    void [FilterExpression, ProjectionExpression, Select, AttributesToGet, ReturnConsumedCapacity];
    const used = String(rest.KeyConditionExpression ?? '');
    const names = Object.fromEntries(Object.entries(rest.ExpressionAttributeNames ?? {}).filter(([k]) => used.includes(k)));
    const values = Object.fromEntries(Object.entries(rest.ExpressionAttributeValues ?? {}).filter(([k]) => new RegExp(`${k}(?![A-Za-z0-9_])`).test(used)));
    const rerun = { ...rest, ExpressionAttributeNames: Object.keys(names).length ? names : undefined, ExpressionAttributeValues: Object.keys(values).length ? values : undefined };
    const out = operation === 'Query' ? await this.db.send(new QueryCommand(rerun as never)) : await this.db.send(new ScanCommand(rerun as never));
    return [{ table: input.TableName, index: input.IndexName, consistent, perItem: false, items: out.Items ?? [] }];
  }
}
