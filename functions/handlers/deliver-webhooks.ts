import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { required } from '../commons/config';
import { lambda } from '../commons/lambda';
import { logger } from '../commons/logger';
import { parseMessage, type Lane } from '../notifications/deliveries';
import { deliver } from '../notifications/deliverer';

/**
 * The delivery queues → one HTTP attempt per message, all messages of a batch in parallel (a batch takes as
 * long as its slowest receiver, at most the 10 s timeout). Deployed twice: DeliverWebhooks on the shared queue
 * and DeliverWebhooksSlow on the slow lane (DELIVERY_LANE=slow), each with its own concurrency, so endpoints
 * whose breaker is open never hold the shared consumers. A message that could not be processed (not a failed
 * HTTP attempt: those schedule their retry) is reported and comes back after the visibility timeout.
 */
export const handler = lambda<SQSEvent, SQSBatchResponse>().handler(async (event) => {
  const table = required('TABLE_NAME');
  const lane: Lane = process.env.DELIVERY_LANE === 'slow' ? 'slow' : 'main';
  const results = await Promise.allSettled(event.Records.map((record) => deliver(parseMessage(record.body), { table, lane })));
  const batchItemFailures = results.flatMap((result, i) => {
    if (result.status === 'fulfilled') return [];
    logger.error('delivery failed', { message_id: event.Records[i]!.messageId, error: (result.reason as Error).message });
    return [{ itemIdentifier: event.Records[i]!.messageId }];
  });
  return { batchItemFailures };
});
