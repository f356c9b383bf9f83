import type { FeeScheduleOverride } from '../ledger';

/** How long a container trusts a merchant's fee override it read. */
export const MERCHANT_FEES_TTL_MS = 60_000;
/** Merchants remembered per container; the oldest is forgotten first. */
const MAX_CACHED = 1_000;

/**
 * A merchant's fee override, read at confirm and cached per container (the service is built once per
 * cold start) for `ttlMs`.
 *
 * Why a cache: overrides change when an operator runs the CLI, rarely, while every confirm would otherwise
 * pay one more DynamoDB read on the payer's critical path. The cost is that a change reaches a warm
 * container up to `ttlMs` late: payments confirmed in that window get the previous rate, which is what the
 * operator guide promises (docs/operations.md). Captures never read it: the rate is snapshotted on the
 * order at confirm.
 */
export function cachedMerchantFees(
  load: (merchantId: string) => Promise<FeeScheduleOverride | undefined>,
  ttlMs = MERCHANT_FEES_TTL_MS,
  clock: () => number = Date.now,
): (merchantId: string) => Promise<FeeScheduleOverride | undefined> {
  const cache = new Map<string, { until: number; fees: FeeScheduleOverride | undefined }>();
  return async (merchantId) => {
    const hit = cache.get(merchantId);
    if (hit && hit.until > clock()) return hit.fees;
    const fees = await load(merchantId);
    cache.delete(merchantId);
    if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
    cache.set(merchantId, { until: clock() + ttlMs, fees });
    return fees;
  };
}
