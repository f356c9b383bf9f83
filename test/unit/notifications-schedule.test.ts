import { describe, expect, it } from 'vitest';
import { gapAfter, hopDelay, MAX_ATTEMPTS, MAX_DELAY_SECONDS, RETRY_GAPS_SECONDS, retryAfterSeconds } from '../../functions/notifications/schedule';

describe('retry schedule (WeChat Pay)', () => {
  it('16 attempts over 24 h 4 m', () => {
    expect(MAX_ATTEMPTS).toBe(16);
    expect(RETRY_GAPS_SECONDS.reduce((a, b) => a + b, 0)).toBe(24 * 3600 + 4 * 60);
  });

  it('each gap is jittered within ±10%, and there is none after the 16th attempt', () => {
    for (const [i, gap] of RETRY_GAPS_SECONDS.entries()) {
      expect(gapAfter(i + 1, () => 0)).toBe(Math.round(gap * 0.9));
      expect(gapAfter(i + 1, () => 0.999999)).toBeGreaterThanOrEqual(Math.floor(gap * 1.1));
      expect(gapAfter(i + 1, () => 0.999999)).toBeLessThanOrEqual(Math.ceil(gap * 1.1));
      expect(gapAfter(i + 1, () => 0.5)).toBe(gap);
    }
    expect(gapAfter(16)).toBeUndefined();
  });

  it('a 429 Retry-After becomes the gap, never shorter than scheduled, never longer than the longest gap', () => {
    const now = new Date('2026-12-01T00:00:00Z');
    expect(retryAfterSeconds('120', 15, now)).toBe(120);
    expect(retryAfterSeconds('1', 15, now)).toBe(15);
    expect(retryAfterSeconds('999999', 15, now)).toBe(21600);
    expect(retryAfterSeconds('Tue, 01 Dec 2026 00:10:00 GMT', 15, now)).toBe(600);
    expect(retryAfterSeconds('soon', 30, now)).toBe(30);
    expect(retryAfterSeconds(undefined, 30, now)).toBe(30);
  });

  it('waits in hops of at most 900 s towards due_at, and is due within a second', () => {
    const now = new Date('2026-12-01T00:00:00Z');
    const at = (s: number) => new Date(now.getTime() + s * 1000).toISOString();
    expect(hopDelay(undefined, now)).toBe(0);
    expect(hopDelay(at(-5), now)).toBe(0);
    expect(hopDelay(at(1), now)).toBe(0);
    expect(hopDelay(at(30), now)).toBe(30);
    expect(hopDelay(at(21600), now)).toBe(MAX_DELAY_SECONDS);
  });
});
