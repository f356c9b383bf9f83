import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { recordDynamoDbCall } from './metrics';

/**
 * SDK clients are created once per cold start. Endpoints come from the standard
 * AWS_ENDPOINT_URL_* variables, so the same code talks to AWS or to the local cloud.
 */
let doc: DynamoDBDocumentClient | undefined;

export function dynamo(): DynamoDBDocumentClient {
  doc ??= DynamoDBDocumentClient.from(withConsumedCapacity(new DynamoDBClient({})), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return doc;
}

let s3Client: S3Client | undefined;

/** S3; path-style against a local endpoint (AWS_ENDPOINT_URL_S3 on loopback has no bucket subdomains). */
export function s3(): S3Client {
  s3Client ??= new S3Client({ forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3) });
  return s3Client;
}

/** Tests that point one process at several endpoints reset the cached client. */
export function resetClients(): void {
  doc = undefined;
  s3Client = undefined;
}

const KIND: Record<string, 'read' | 'write'> = {
  GetItemCommand: 'read',
  QueryCommand: 'read',
  ScanCommand: 'read',
  BatchGetItemCommand: 'read',
  TransactGetItemsCommand: 'read',
  PutItemCommand: 'write',
  UpdateItemCommand: 'write',
  DeleteItemCommand: 'write',
  BatchWriteItemCommand: 'write',
  TransactWriteItemsCommand: 'write',
};

type Capacity = { CapacityUnits?: number } | { CapacityUnits?: number }[] | undefined;

/**
 * Every data-plane call asks for its consumed capacity (free; the answer grows by a few bytes) and
 * records it with the call, so units per request are measured, not estimated (commons/metrics.ts).
 */
function withConsumedCapacity(client: DynamoDBClient): DynamoDBClient {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const kind = KIND[context.commandName ?? ''];
      const input = args.input as { ReturnConsumedCapacity?: string };
      if (kind) input.ReturnConsumedCapacity ??= 'TOTAL';
      let units = 0;
      try {
        const result = await next(args);
        const consumed = (result.output as { ConsumedCapacity?: Capacity }).ConsumedCapacity;
        for (const c of [consumed ?? []].flat()) units += c.CapacityUnits ?? 0;
        return result;
      } finally {
        recordDynamoDbCall(kind ?? 'other', units);
      }
    },
    { step: 'initialize', name: 'payplaneConsumedCapacity' },
  );
  return client;
}
