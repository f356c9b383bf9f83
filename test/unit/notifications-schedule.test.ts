import { describe, expect, it } from 'vitest';
import { firstHop, gapAfter, MAX_ATTEMPTS, MAX_DELAY_SECONDS, RETRY_GAPS_SECONDS, retryAfterSeconds } from '../../functions/notifications/schedule';

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

  it('splits a wait into a first hop of at most 900 s and the rest the message carries', () => {
    expect(firstHop(0)).toEqual({ delay: 0, rest: 0 });
    expect(firstHop(30)).toEqual({ delay: 30, rest: 0 });
    expect(firstHop(14.2)).toEqual({ delay: 15, rest: 0 });
    expect(firstHop(1200)).toEqual({ delay: MAX_DELAY_SECONDS, rest: 300 });
    expect(firstHop(21600)).toEqual({ delay: MAX_DELAY_SECONDS, rest: 21600 - MAX_DELAY_SECONDS });
  });
});
