import { lambda } from '../commons/lambda';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { channel, ChannelSignatureError } from '../channels';
import { logger } from '../commons/logger';
import { payments } from '../payments';

/**
 * POST /channels/sandbox/notify (public: the channel's signature is the authentication). Verifies the
 * notification, applies it idempotently and answers in the channel's words. Anything that did not
 * verify or apply is answered `fail` (the channel resends); details stay in the log, never in the answer.
 */
export const handler = lambda<APIGatewayProxyEvent, APIGatewayProxyResult>().handler(async (event) => {
  const sandbox = channel('sandbox');
  const ack = (ok: boolean) => sandbox.notificationAck(ok);
  const raw = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64') : (event.body ?? '');
  try {
    const verified = await sandbox.parseNotification(event.headers ?? {}, raw);
    const outcome = await payments().applyChannelEvent(verified);
    logger.info('channel notification applied', { channel: 'sandbox', eventId: verified.eventId, paymentId: verified.paymentId, ...outcome });
    return ack(true);
  } catch (error) {
    if (error instanceof ChannelSignatureError) {
      logger.warn('channel notification refused', { channel: 'sandbox', code: error.code, sourceIp: event.requestContext?.identity?.sourceIp });
      return ack(false);
    }
    logger.error('channel notification not applied; the channel will resend it', { channel: 'sandbox', error: error as Error });
    return ack(false);
  }
});
