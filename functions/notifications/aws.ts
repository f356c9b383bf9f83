import { KMSClient } from '@aws-sdk/client-kms';
import { SQSClient } from '@aws-sdk/client-sqs';
import * as z from 'zod';

/**
 * The notification pipeline's SDK clients (once per cold start; endpoints from AWS_ENDPOINT_URL_SQS / _KMS)
 * and its settings, each read when first needed, so a function needs only the variables of what it calls.
 */
let sqsClient: SQSClient | undefined;
let kmsClient: KMSClient | undefined;

export const sqs = (): SQSClient => (sqsClient ??= new SQSClient({}));
export const kms = (): KMSClient => (kmsClient ??= new KMSClient({}));

/** Tests that point one process at several endpoints reset the cached clients. */
export function resetNotificationClients(): void {
  sqsClient?.destroy();
  kmsClient?.destroy();
  sqsClient = kmsClient = undefined;
}

const schema = z.object({
  /** The shared delivery queue (DeliverWebhooks). */
  DELIVERY_QUEUE_URL: z.url(),
  /** The slow lane: deliveries of endpoints whose circuit breaker is open (DeliverWebhooksSlow). */
  DELIVERY_SLOW_QUEUE_URL: z.url(),
  /** Deliveries that failed their last scheduled attempt. */
  DELIVERY_DLQ_URL: z.url(),
  /** When set, the publisher sends `{event_id, merchant_id}` of receipt-worthy events there. */
  RECEIPTS_QUEUE_URL: z.url().optional(),
  /** The checkout's return-URL key, published in the JWKS. */
  CHECKOUT_SIGNING_KEY_ARN: z.string().startsWith('arn:'),
  /** Set by the local cloud only (never in a template): http://localhost and http://127.0.0.1 may be called. */
  PAYPLANE_LOCAL_ALLOW_LOOPBACK_WEBHOOKS: z.enum(['1']).optional(),
});
export type NotificationEnv = z.infer<typeof schema>;

export function notificationEnv<K extends keyof NotificationEnv>(key: K): NotificationEnv[K] {
  const parsed = schema.shape[key].safeParse(process.env[key]);
  if (!parsed.success) {
    throw new Error(`Environment variable ${key} is missing or invalid (${JSON.stringify(process.env[key] ?? null)}): ${parsed.error.issues[0]?.message}`);
  }
  return parsed.data as NotificationEnv[K];
}

export const loopbackAllowed = () => process.env.PAYPLANE_LOCAL_ALLOW_LOOPBACK_WEBHOOKS === '1';
