import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { logger } from '../../commons/logger';
import { kms, sandboxEnv } from './aws';
import { SandboxBank } from './bank';
import { parseJob, SqsCallbackQueue } from './queue';
import { KmsMacSigner, type MacSigner } from './signer';
import { TradeStore } from './store';
import { isSuccessAck, NOTIFICATION_CONTENT_TYPE, notifiable, notificationParams, signedNotificationBody } from './transformers';

/**
 * The sandbox PSP's notification sender: the body of a Lambda function with the callback queue as its
 * SQS event source (ReportBatchItemFailures on). For each job it settles the trade if the bank was still
 * deciding, builds the trade's current result in the sandbox wire format, signs it with the KMS HMAC key
 * and POSTs it to the trade's notify_url. Anything but `200 success` fails that record, so SQS delivers
 * it again after the visibility timeout, until maxReceiveCount sends it to the dead-letter queue, as
 * Alipay resends for about a day. Each delivery is re-signed with a fresh notify_time; its notify_id stays
 * the same for the same trade state, so the platform can dedupe.
 */
export interface NotifierDeps {
  bank: SandboxBank;
  /** Signs notifications (kms:GenerateMac only). */
  signer: MacSigner;
  fetch: typeof fetch;
  now: () => Date;
  /** Per POST; default 10 s. */
  timeoutMs: number;
}

let defaults: NotifierDeps | undefined;

function defaultDeps(): NotifierDeps {
  defaults ??= {
    bank: new SandboxBank({ store: new TradeStore(), queue: new SqsCallbackQueue() }),
    signer: new KmsMacSigner(() => sandboxEnv('SANDBOX_SIGNING_KEY_ARN'), kms),
    fetch: (...args) => fetch(...args),
    now: () => new Date(),
    timeoutMs: 10_000,
  };
  return defaults;
}

export async function deliverSandboxCallbacks(event: SQSEvent, deps: Partial<NotifierDeps> = {}): Promise<SQSBatchResponse> {
  const d: NotifierDeps = { ...defaultDeps(), ...deps };
  const outcomes = await Promise.all(
    event.Records.map(async (record) => {
      try {
        await deliver(record, d);
        return undefined;
      } catch (error) {
        logger.warn('sandbox callback not delivered; SQS will retry', {
          messageId: record.messageId,
          receiveCount: record.attributes?.ApproximateReceiveCount,
          error: (error as Error).message,
        });
        return { itemIdentifier: record.messageId };
      }
    }),
  );
  return { batchItemFailures: outcomes.filter((f) => f !== undefined) };
}

async function deliver(record: SQSRecord, d: NotifierDeps): Promise<void> {
  let outTradeNo: string;
  try {
    outTradeNo = parseJob(record.body).out_trade_no;
  } catch (error) {
    // A message no retry can fix: drop it rather than loop it to the dead-letter queue.
    logger.error('sandbox callback job dropped: unreadable', { messageId: record.messageId, error: (error as Error).message });
    return;
  }
  const found = await d.bank.resultFor(outTradeNo);
  if (!found) throw new Error(`no sandbox trade for out_trade_no ${outTradeNo} (yet)`);
  const { trade, notifyUrl } = found;
  if (!notifiable(trade.trade_status)) {
    logger.info('sandbox callback skipped: no result to report', { outTradeNo, status: trade.trade_status });
    return;
  }
  const body = await signedNotificationBody(notificationParams(trade, d.now()), d.signer);
  const res = await d.fetch(notifyUrl, {
    method: 'POST',
    headers: { 'Content-Type': NOTIFICATION_CONTENT_TYPE, 'User-Agent': 'payplane-sandbox-notifier/1' },
    body,
    signal: AbortSignal.timeout(d.timeoutMs),
  });
  const answer = (await res.text()).slice(0, 200);
  if (!isSuccessAck(res.status, answer)) {
    throw new Error(`notify_url ${new URL(notifyUrl).host} answered ${res.status} '${answer}', expected 200 'success'`);
  }
  logger.info('sandbox callback delivered', { outTradeNo, status: trade.trade_status, seq: trade.seq });
}

/** Tests that change the environment between cases drop the cached default dependencies. */
export function resetNotifier(): void {
  defaults = undefined;
}
