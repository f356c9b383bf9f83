/**
 * When a delivery is attempted: WeChat Pay's published notification schedule. The first attempt goes out at
 * once, each later one after the gap below (15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 1h, 3h, 3h, 3h, 6h, 6h):
 * 16 attempts over 24 h 4 m. Each gap gets ±10% jitter, so the retries of one outage do not all land in the
 * same second.
 *
 * Nothing sleeps and nothing is held in flight: a gap longer than SQS's 900 s DelaySeconds is waited out in
 * hops (the message carries the rest of the wait in `wait_seconds`; a hop that has some left is sent again with
 * it and makes no HTTP call).
 */
export const RETRY_GAPS_SECONDS = [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600] as const;

/** Attempts per run (the first plus one per gap). */
export const MAX_ATTEMPTS = RETRY_GAPS_SECONDS.length + 1;

/** The longest DelaySeconds SQS accepts. */
export const MAX_DELAY_SECONDS = 900;

export const JITTER = 0.1;

/**
 * Seconds to wait after the `position`-th attempt of a run failed (1-based), jittered; undefined after the
 * last one. `random` is in [0, 1).
 */
export function gapAfter(position: number, random: () => number = Math.random): number | undefined {
  const gap = RETRY_GAPS_SECONDS[position - 1];
  if (gap === undefined) return undefined;
  return Math.round(gap * (1 + JITTER * (2 * random() - 1)));
}

/**
 * A 429's Retry-After (seconds, or an HTTP date) as the next gap, capped by the schedule's longest gap, and
 * never shorter than the scheduled one would be: a receiver asking to wait 1 s does not speed the schedule up.
 */
export function retryAfterSeconds(header: string | undefined, scheduled: number, now: Date): number {
  if (!header) return scheduled;
  const trimmed = header.trim();
  const seconds = /^\d+$/.test(trimmed) ? Number(trimmed) : (Date.parse(trimmed) - now.getTime()) / 1000;
  if (!Number.isFinite(seconds)) return scheduled;
  return Math.min(Math.max(Math.ceil(seconds), scheduled), Math.max(...RETRY_GAPS_SECONDS));
}

/**
 * A wait of `seconds` as SQS hops: the first hop's DelaySeconds (≤ 900) and the rest, which the message carries
 * as `wait_seconds` so that the next hop knows how far it still has to go. The queue's delays are the only clock:
 * a hop never compares a due time with the function's clock, so a time-scaled local cloud runs the whole schedule
 * fast, and in AWS the sum of the hops is the gap.
 */
export function firstHop(seconds: number): { delay: number; rest: number } {
  const total = Number.isFinite(seconds) ? Math.max(0, Math.ceil(seconds)) : 0;
  const delay = Math.min(total, MAX_DELAY_SECONDS);
  return { delay, rest: total - delay };
}

/** Seconds an attempt ran after it was due (the deliverer emits it; the "overdue" alarm watches the maximum). */
export const LATENESS_METRIC = 'WebhookDeliveryLateness';
