import { lambda } from '../commons/lambda';
import type { ScheduledEvent } from 'aws-lambda';
import { logger } from '../commons/logger';
import { orders } from '../orders';

/** Scheduled every minute: closes unpaid orders past expires_at (reads show them closed already). */
export const handler = lambda<ScheduledEvent, { closed: number }>().handler(async () => {
  const closed = await orders().expireDue(new Date());
  if (closed > 0) logger.info('expired orders closed', { closed });
  return { closed };
});
