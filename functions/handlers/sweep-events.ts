import { required } from '../commons/config';
import { lambda } from '../commons/lambda';
import { logger } from '../commons/logger';
import { sweepUnpublished } from '../notifications/publisher';

/** Every minute: publishes events the stream publisher has not published after 2 minutes (functions/notifications/publisher.ts). */
export const handler = lambda<unknown, { published: number; failed: number }>().handler(async () => {
  const result = await sweepUnpublished(required('TABLE_NAME'));
  if (result.published || result.failed) logger.info('sweep', result);
  return result;
});
