import * as z from 'zod';

/**
 * The receipts sender's environment (set by lib/constructs/receipts.ts) and the timings the construct and the
 * claims share.
 */

/** The sender's Lambda timeout: one message is a few reads, one KMS open and at most two sends. */
export const SENDER_TIMEOUT_SECONDS = 30;
/**
 * How long a claim in `sending` belongs to the run that took it. Longer than the function's timeout, so a live
 * run is never overtaken; shorter than the queue's visibility timeout (6× the function's), so the redelivery of a
 * message whose run died finds the claim free and sends.
 */
export const CLAIM_LEASE_SECONDS = 2 * SENDER_TIMEOUT_SECONDS;
/** Claims outlive every redelivery of their event (events are kept 30 days). */
export const CLAIM_RETENTION_SECONDS = 30 * 24 * 3600;

const schema = z.object({
  TABLE_NAME: z.string().min(3),
  /** The From address: an address (or `Name <address>`) of the verified SES identity. */
  RECEIPTS_EMAIL_FROM: z.string().min(3),
  /** The SES configuration set every receipt is sent with (bounce and complaint suppression). */
  RECEIPTS_CONFIGURATION_SET: z.string().min(1).optional(),
});

export type ReceiptsConfig = z.infer<typeof schema>;

let cached: ReceiptsConfig | undefined;

export function receiptsConfig(): ReceiptsConfig {
  cached ??= schema.parse(process.env);
  return cached;
}

/** Tests that point one process at several setups. */
export function resetReceiptsConfig(): void {
  cached = undefined;
}
