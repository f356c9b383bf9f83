import { randomUUID } from 'node:crypto';
import type { LocalIam } from './iam';
import type { InvokeResult, LambdaRuntime } from './lambda';
import { TemplateError, type LocalStack } from './template';

/**
 * EventBridge scheduled rules (AWS::Events::Rule with ScheduleExpression rate(...) or cron(...)):
 * each Lambda target is invoked asynchronously with a "Scheduled Event" on that cadence, in UTC.
 * The local cloud's time scale divides rate() periods (cron expressions name wall-clock times and stay
 * as they are); `trigger()` (and the admin route POST /__schedules/{rule}/trigger) fires a rule now.
 */

export type Schedule = { kind: 'rate'; periodMs: number } | { kind: 'cron'; fields: CronFields };

export interface ScheduleTarget {
  id: string;
  functionLogicalId: string;
  /** Target `Input`: a constant JSON payload replacing the event. */
  input?: unknown;
}

export interface ScheduleRule {
  logicalId: string;
  name: string;
  arn: string;
  expression: string;
  schedule: Schedule;
  enabled: boolean;
  targets: ScheduleTarget[];
}

/** Reads the scheduled rules of the template. Rules with an event pattern only are not schedules. */
export function scheduleRules(stack: LocalStack, log: (line: string) => void = () => {}): ScheduleRule[] {
  const rules: ScheduleRule[] = [];
  for (const [logicalId, r] of stack.resourcesOfType('AWS::Events::Rule')) {
    const p = (stack.resolve(r.Properties ?? {}, logicalId) ?? {}) as Record<string, unknown>;
    if (typeof p.ScheduleExpression !== 'string') continue;
    const targets: ScheduleTarget[] = [];
    for (const t of (p.Targets as Record<string, unknown>[] | undefined) ?? []) {
      const fn = stack.functionByArn(String(t.Arn).split(':').slice(0, 7).join(':'));
      if (!fn) {
        log(`Schedule ${logicalId}: target ${String(t.Id)} (${String(t.Arn)}) is not a Lambda function of the template; skipped.`);
        continue;
      }
      if (t.InputPath !== undefined || t.InputTransformer !== undefined) {
        log(`Schedule ${logicalId}: target ${String(t.Id)} uses InputPath/InputTransformer, not emulated; it gets the plain event.`);
      }
      targets.push({ id: String(t.Id), functionLogicalId: fn, input: typeof t.Input === 'string' ? JSON.parse(t.Input) : undefined });
    }
    rules.push({
      logicalId,
      name: typeof p.Name === 'string' ? p.Name : stack.generatedName(logicalId),
      arn: String(stack.getAtt(logicalId, 'Arn', logicalId)),
      expression: p.ScheduleExpression,
      schedule: parseSchedule(p.ScheduleExpression, logicalId),
      enabled: p.State === undefined || p.State === 'ENABLED',
      targets,
    });
  }
  return rules;
}

const UNITS: Record<string, number> = { minute: 60_000, minutes: 60_000, hour: 3_600_000, hours: 3_600_000, day: 86_400_000, days: 86_400_000 };

export function parseSchedule(expression: string, where = 'ScheduleExpression'): Schedule {
  const rate = /^rate\((\d+)\s+(minutes?|hours?|days?)\)$/.exec(expression.trim());
  if (rate) {
    const n = Number(rate[1]);
    const unit = rate[2]!;
    if (n < 1 || (n === 1) !== !unit.endsWith('s')) {
      throw new TemplateError(`${where}: '${expression}' is not a valid rate: use 'rate(1 minute)' or 'rate(N minutes)'.`);
    }
    return { kind: 'rate', periodMs: n * UNITS[unit]! };
  }
  const cron = /^cron\((.+)\)$/.exec(expression.trim());
  if (cron) return { kind: 'cron', fields: parseCron(cron[1]!, where) };
  throw new TemplateError(`${where}: '${expression}' is neither rate(...) nor cron(...).`);
}

// ---- cron ---------------------------------------------------------------------------------

export interface CronFields {
  minutes: Set<number>;
  hours: Set<number>;
  /** undefined = '?' */
  daysOfMonth?: Set<number>;
  months: Set<number>;
  /** 1 = Sunday … 7 = Saturday; undefined = '?' */
  daysOfWeek?: Set<number>;
  /** undefined = any year */
  years?: Set<number>;
}

const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** EventBridge cron: `minutes hours day-of-month month day-of-week year`, UTC. L, W and # are not supported. */
export function parseCron(text: string, where = 'cron'): CronFields {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 6) throw new TemplateError(`${where}: cron(${text}) needs 6 fields (minutes hours day-of-month month day-of-week year).`);
  const [min, hour, dom, month, dow, year] = parts as [string, string, string, string, string, string];
  if ((dom === '?') === (dow === '?')) {
    throw new TemplateError(`${where}: cron(${text}): exactly one of day-of-month and day-of-week must be '?'.`);
  }
  return {
    minutes: field(min, 0, 59, [], where),
    hours: field(hour, 0, 23, [], where),
    daysOfMonth: dom === '?' ? undefined : field(dom, 1, 31, [], where),
    months: field(month, 1, 12, MONTH_NAMES, where),
    daysOfWeek: dow === '?' ? undefined : field(dow, 1, 7, DAY_NAMES, where),
    years: year === '*' ? undefined : field(year, 1970, 2199, [], where),
  };
}

function field(text: string, min: number, max: number, names: string[], where: string): Set<number> {
  const out = new Set<number>();
  const value = (v: string) => {
    const i = names.indexOf(v.toUpperCase());
    const n = i >= 0 ? i + 1 : Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new TemplateError(`${where}: '${v}' is out of range ${min}-${max} in cron field '${text}'.`);
    return n;
  };
  for (const item of text.split(',')) {
    if (/[LW#]/.test(item)) throw new TemplateError(`${where}: cron field '${text}' uses L, W or #, which the local cloud does not support.`);
    const [range, stepText] = item.split('/') as [string, string | undefined];
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new TemplateError(`${where}: bad step in cron field '${text}'.`);
    let from: number;
    let to: number;
    if (range === '*') [from, to] = [min, max];
    else if (range.includes('-')) {
      const [a, b] = range.split('-') as [string, string];
      [from, to] = [value(a), value(b)];
    } else {
      from = value(range);
      to = stepText === undefined ? from : max;
    }
    for (let n = from; n <= to; n += step) out.add(n);
  }
  return out;
}

/** The first minute strictly after `after` that the cron expression selects (UTC). */
export function nextCronTime(fields: CronFields, after: Date): Date | undefined {
  const t = new Date(after.getTime());
  t.setUTCSeconds(0, 0);
  t.setUTCMinutes(t.getUTCMinutes() + 1);
  const limit = after.getTime() + 5 * 366 * 86_400_000;
  while (t.getTime() <= limit) {
    if (fields.years && !fields.years.has(t.getUTCFullYear())) {
      t.setUTCFullYear(t.getUTCFullYear() + 1, 0, 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    const dayOk =
      fields.months.has(t.getUTCMonth() + 1) &&
      (fields.daysOfMonth ? fields.daysOfMonth.has(t.getUTCDate()) : true) &&
      (fields.daysOfWeek ? fields.daysOfWeek.has(t.getUTCDay() + 1) : true);
    if (!dayOk) {
      t.setUTCDate(t.getUTCDate() + 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!fields.hours.has(t.getUTCHours())) {
      t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
      continue;
    }
    if (fields.minutes.has(t.getUTCMinutes())) return t;
    t.setUTCMinutes(t.getUTCMinutes() + 1);
  }
  return undefined;
}

/** The event EventBridge sends for a schedule (`time` without milliseconds, like EventBridge). */
export function scheduledEvent(rule: ScheduleRule, account: string, region: string, time: Date): Record<string, unknown> {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account,
    time: time.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region,
    resources: [rule.arn],
    detail: {},
  };
}

export interface ScheduleRun {
  rule: string;
  time: string;
  results: { target: string; ok: boolean; error?: string; payload?: unknown }[];
}

export class Scheduler {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private runs = 0;
  private stopped = false;

  constructor(
    readonly rules: ScheduleRule[],
    private readonly runtime: LambdaRuntime,
    private readonly options: { account: string; region: string; timeScale?: number; log?: (line: string) => void; iam?: LocalIam },
  ) {}

  /** Starts the timers of every enabled rule. */
  start(): void {
    const timeScale = this.options.timeScale ?? 1;
    for (const rule of this.rules) {
      if (!rule.enabled || rule.targets.length === 0) continue;
      if (rule.schedule.kind === 'rate') {
        const timer = setInterval(() => void this.fire(rule), Math.max(50, rule.schedule.periodMs / timeScale));
        timer.unref();
        this.timers.push(timer);
      } else {
        this.scheduleCron(rule, rule.schedule.fields);
      }
    }
  }

  private scheduleCron(rule: ScheduleRule, fields: CronFields): void {
    if (this.stopped) return;
    const next = nextCronTime(fields, new Date());
    if (!next) return;
    // setTimeout caps at ~24.8 days; re-arm in steps.
    const delay = Math.min(next.getTime() - Date.now(), 2 ** 31 - 1);
    const timer = setTimeout(() => {
      if (Date.now() >= next.getTime()) void this.fire(rule, next);
      this.scheduleCron(rule, fields);
    }, delay);
    timer.unref();
    this.timers.push(timer);
  }

  /** Fires a rule now (by logical id or name) and waits for its targets. */
  async trigger(ruleId: string): Promise<ScheduleRun> {
    const rule = this.rules.find((r) => r.logicalId === ruleId || r.name === ruleId);
    if (!rule) throw new Error(`No scheduled rule '${ruleId}' (rules: ${this.rules.map((r) => r.logicalId).join(', ') || 'none'}).`);
    return this.fire(rule);
  }

  private async fire(rule: ScheduleRule, time = new Date()): Promise<ScheduleRun> {
    if (this.stopped) return { rule: rule.logicalId, time: time.toISOString(), results: [] };
    this.runs++;
    const event = scheduledEvent(rule, this.options.account, this.options.region, time);
    const run = Promise.all(
      rule.targets.map(async (t) => {
        // EventBridge may invoke only where the function's resource policy (AWS::Lambda::Permission) allows the rule.
        const ruleArn = `arn:aws:events:${this.options.region}:${this.options.account}:rule/${rule.name}`;
        const permission = await this.options.iam?.authorizeService('events.amazonaws.com', this.runtime.get(t.functionLogicalId).definition.arn, ruleArn);
        if (permission && !permission.allowed && !permission.served) {
          return { target: t.functionLogicalId, ok: false, error: `AccessDeniedException: ${permission.denial.message}` };
        }
        const result: InvokeResult = await this.runtime.invoke(t.functionLogicalId, t.input ?? event);
        if (!result.ok) this.options.log?.(`Schedule ${rule.logicalId} → ${t.functionLogicalId} failed: ${result.error.errorType}: ${result.error.errorMessage}`);
        return result.ok
          ? { target: t.functionLogicalId, ok: true, payload: result.payload }
          : { target: t.functionLogicalId, ok: false, error: `${result.error.errorType}: ${result.error.errorMessage}` };
      }),
    );
    this.inFlight.add(run);
    try {
      return { rule: rule.logicalId, time: String(event.time), results: await run };
    } catch (error) {
      return { rule: rule.logicalId, time: String(event.time), results: [{ target: '*', ok: false, error: String(error) }] };
    } finally {
      this.inFlight.delete(run);
    }
  }

  stats(): { runs: number; rules: { logicalId: string; expression: string; enabled: boolean; targets: string[] }[] } {
    return {
      runs: this.runs,
      rules: this.rules.map((r) => ({ logicalId: r.logicalId, expression: r.expression, enabled: r.enabled, targets: r.targets.map((t) => t.functionLogicalId) })),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    // In-flight invocations end when the runtime stops its workers; give them a moment first.
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}
