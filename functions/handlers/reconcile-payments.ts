import type { ScheduledEvent } from 'aws-lambda';
import { lambda } from '../commons/lambda';
import { logger } from '../commons/logger';
import { payments, type ReconcileSummary } from '../payments';

/** Scheduled every 5 minutes: asks the channel about payments and refunds it never answered (payments README). */
export const handler = lambda<ScheduledEvent, ReconcileSummary>().handler(async () => {
  const summary = await payments().reconcileDue(new Date());
  if (summary.settled > 0 || summary.unresolved > 0) logger.info('payments reconciled', { settled: summary.settled, unresolved: summary.unresolved });
  // Left in the index: the next run retries them.
  for (const failure of summary.failed) logger.error('reconciling failed', failure);
  return summary;
});
