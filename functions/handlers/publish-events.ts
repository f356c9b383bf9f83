import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { required } from '../commons/config';
import { lambda } from '../commons/lambda';
import { logger } from '../commons/logger';
import type { EventItem } from '../events/event';
import { publishEvent } from '../notifications/publisher';

/**
 * The main table's stream (FilterCriteria: INSERTs of `type = event` only) → deliveries. A failed record is
 * reported by its sequence number: Lambda retries from the lowest one, bisects, and after the retry limit sends
 * the batch's description to the on-failure queue; the sweeper publishes whatever is still unpublished.
 */
export const handler = lambda<DynamoDBStreamEvent, DynamoDBBatchResponse>().handler(async (event) => {
  const table = required('TABLE_NAME');
  const results = await Promise.allSettled(
    event.Records.map((record) => publishEvent(table, unmarshall(record.dynamodb!.NewImage as Record<string, AttributeValue>) as EventItem)),
  );
  const batchItemFailures = results.flatMap((result, i) => {
    if (result.status === 'fulfilled') return [];
    logger.error('publishing failed', { sequence_number: event.Records[i]!.dynamodb?.SequenceNumber, error: (result.reason as Error).message });
    return [{ itemIdentifier: event.Records[i]!.dynamodb!.SequenceNumber! }];
  });
  return { batchItemFailures };
});
