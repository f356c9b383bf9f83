import { KMSClient } from '@aws-sdk/client-kms';
import { SQSClient } from '@aws-sdk/client-sqs';
import * as z from 'zod';

/**
 * The sandbox's own SDK clients and settings, created once per cold start. Endpoints come from the
 * standard AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL_KMS variables, as for every other client.
 */
let sqsClient: SQSClient | undefined;
let kmsClient: KMSClient | undefined;

export const sqs = (): SQSClient => (sqsClient ??= new SQSClient({}));
export const kms = (): KMSClient => (kmsClient ??= new KMSClient({}));

/** Tests that point one process at several endpoints reset the cached clients. */
export function resetSandboxClients(): void {
  sqsClient?.destroy();
  kmsClient?.destroy();
  sqsClient = undefined;
  kmsClient = undefined;
}

const schema = z.object({
  /** The queue of callback jobs (authorize → SendMessage with DelaySeconds; the notifier consumes it). */
  SANDBOX_CALLBACK_QUEUE_URL: z.url(),
  /** The KMS HMAC_256 key notifications are signed (notifier) and verified (notify handler) with. */
  SANDBOX_SIGNING_KEY_ARN: z.string().startsWith('arn:'),
  /** How long the bank "thinks" before an asynchronous result (SQS DelaySeconds, 0–900). */
  SANDBOX_CALLBACK_DELAY_SECONDS: z.coerce.number().int().min(0).max(900).default(2),
});
export type SandboxEnv = z.infer<typeof schema>;

/** One setting, read when first needed, so a function only needs the variables of what it calls. */
export function sandboxEnv<K extends keyof SandboxEnv>(key: K): SandboxEnv[K] {
  const parsed = schema.shape[key].safeParse(process.env[key]);
  if (!parsed.success) {
    throw new Error(`Environment variable ${key} is missing or invalid (${JSON.stringify(process.env[key] ?? null)}): ${parsed.error.issues[0]?.message}`);
  }
  return parsed.data as SandboxEnv[K];
}
