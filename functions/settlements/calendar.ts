import { InternalError } from '../commons/errors';

/**
 * Business days, in one place for cutoffs, balances, bills and reports. A business day is a UTC day unless the
 * platform sets BUSINESS_TIME_ZONE (an IANA name, e.g. Asia/Shanghai): then every day boundary is midnight there,
 * DST included (a day may have 23 or 25 hours).
 *
 * Availability: an entry created at `c` becomes available at the start of the business day `delay_days` after
 * c's own (T+1 by default, as Alipay does); with delay 0 it is available at once.
 */
export const DEFAULT_TIME_ZONE = 'UTC';
export const MAX_DELAY_DAYS = 30;
export const DEFAULT_DELAY_DAYS = 1;

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const formatters = new Map<string, Intl.DateTimeFormat>();

/** The platform's business time zone: BUSINESS_TIME_ZONE, or UTC. */
export function businessTimeZone(env: NodeJS.ProcessEnv = process.env): string {
  const zone = env.BUSINESS_TIME_ZONE?.trim() || DEFAULT_TIME_ZONE;
  if (!isTimeZone(zone)) {
    throw new InternalError('invalid_time_zone', `BUSINESS_TIME_ZONE '${zone}' is not an IANA time zone; use e.g. UTC, Europe/Berlin or Asia/Shanghai.`);
  }
  return zone;
}

export function isTimeZone(zone: string): boolean {
  try {
    formatter(zone);
    return true;
  } catch {
    return false;
  }
}

/** The business day of instant `t`, as YYYY-MM-DD. */
export function businessDay(t: Date, zone = DEFAULT_TIME_ZONE): string {
  const { year, month, day } = wallClock(t, zone);
  return `${year}-${pad(month)}-${pad(day)}`;
}

/** The instant the business day `day` (YYYY-MM-DD) starts, and the one the next day starts. */
export function dayBounds(day: string, zone = DEFAULT_TIME_ZONE): { start: Date; end: Date } {
  const m = DAY.exec(day);
  const valid = m && new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!)).toISOString().slice(0, 10) === day;
  if (!valid) throw new InternalError('invalid_day', `'${day}' is not a calendar date; use YYYY-MM-DD, e.g. 2026-12-01.`);
  return { start: midnight(+m[1]!, +m[2]!, +m[3]!, zone), end: midnight(+m[1]!, +m[2]!, +m[3]! + 1, zone) };
}

/** The start of `t`'s business day. */
export function startOfBusinessDay(t: Date, zone = DEFAULT_TIME_ZONE): Date {
  const { year, month, day } = wallClock(t, zone);
  return midnight(year, month, day, zone);
}

/** The start of the business day `days` after (or before, if negative) the one that starts at `dayStart`. */
export function addBusinessDays(dayStart: Date, days: number, zone = DEFAULT_TIME_ZONE): Date {
  const { year, month, day } = wallClock(dayStart, zone);
  return midnight(year, month, day + days, zone);
}

/** When an entry created at `createdAt` becomes available. */
export function availableAt(createdAt: Date, delayDays: number, zone = DEFAULT_TIME_ZONE): Date {
  checkDelay(delayDays);
  return delayDays === 0 ? createdAt : addBusinessDays(startOfBusinessDay(createdAt, zone), delayDays, zone);
}

/**
 * The entries available before `at` are exactly those created before the instant returned:
 * availableAt(c) < at ⟺ c < availableBefore(at). (Property-tested in test/unit/settlement-calendar.test.ts.)
 */
export function availableBefore(at: Date, delayDays: number, zone = DEFAULT_TIME_ZONE): Date {
  checkDelay(delayDays);
  if (delayDays === 0) return at;
  const dayStart = startOfBusinessDay(at, zone);
  // A cutoff on a day boundary excludes that day's availability; one inside a day includes it.
  return addBusinessDays(dayStart, (dayStart.getTime() === at.getTime() ? 0 : 1) - delayDays, zone);
}

function checkDelay(delayDays: number): void {
  if (!Number.isInteger(delayDays) || delayDays < 0 || delayDays > MAX_DELAY_DAYS) {
    throw new InternalError('invalid_delay_days', `delay_days ${delayDays} must be an integer from 0 to ${MAX_DELAY_DAYS}.`);
  }
}

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(zone, f);
  }
  return f;
}

function wallClock(t: Date, zone: string) {
  const parts = Object.fromEntries(formatter(zone).formatToParts(t).map((p) => [p.type, p.value]));
  return { year: +parts.year!, month: +parts.month!, day: +parts.day!, hour: +parts.hour!, minute: +parts.minute!, second: +parts.second! };
}

/** The zone's offset from UTC at instant `ms`, in ms. */
function offsetAt(ms: number, zone: string): number {
  const w = wallClock(new Date(ms), zone);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - Math.floor(ms / 1000) * 1000;
}

/**
 * The first instant of the wall-clock date (day may overflow: Date.UTC normalises it). Where midnight does not
 * exist (a DST gap at 00:00), the day starts when the gap ends.
 */
function midnight(year: number, month: number, day: number, zone: string): Date {
  const wall = Date.UTC(year, month - 1, day);
  let guess = wall - offsetAt(wall, zone);
  guess = wall - offsetAt(guess, zone);
  const w = wallClock(new Date(guess), zone);
  const target = new Date(wall);
  if (w.year !== target.getUTCFullYear() || w.month !== target.getUTCMonth() + 1 || w.day !== target.getUTCDate()) {
    // The guess fell in the previous day (a gap): step forward to the first instant of the target date.
    guess += 3_600_000 - ((w.minute * 60 + w.second) * 1000);
  }
  return new Date(guess);
}

const pad = (n: number) => String(n).padStart(2, '0');
