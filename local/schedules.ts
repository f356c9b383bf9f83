import { randomUUID } from 'node:crypto';
import type { LocalIam } from './iam';
import type { InvokeResult, LambdaRuntime } from './lambda';
import type { LocalStepFunctions } from './stepfunctions';
import { TemplateError, type LocalStack } from './template';

/**
 * Two kinds of schedules, one scheduler:
 * - EventBridge scheduled rules (AWS::Events::Rule with ScheduleExpression rate(...) or cron(...)): each Lambda
 *   target is invoked with a "Scheduled Event" on that cadence, in UTC, where the function's resource policy
 *   (AWS::Lambda::Permission) lets events.amazonaws.com in;
 * - EventBridge Scheduler schedules (AWS::Scheduler::Schedule: rate(), cron() in ScheduleExpressionTimezone,
 *   at()), whose one target is a Lambda function (invoked with the target's Input) or a state machine (an
 *   execution started with the Input), templated (Target.Arn = the function / state machine ARN, as CDK's
 *   aws-scheduler-targets synthesize) or universal (arn:aws:scheduler:::aws-sdk:sfn:startExecution,
 *   …:aws-sdk:lambda:invoke), in the name of Target.RoleArn, which local IAM checks (lambda:InvokeFunction,
 *   states:StartExecution). Input may carry the context attributes <aws.scheduler.scheduled-time> & co.
 * The local cloud's time scale divides rate() periods (cron and at() name wall-clock times and stay as they
 * are); `trigger()` (and the admin route POST /__schedules/{id}/trigger) fires one now.
 */

export type Schedule = { kind: 'rate'; periodMs: number } | { kind: 'cron'; fields: CronFields } | { kind: 'at'; wallClock: string };

export interface ScheduleTarget {
  id: string;
  /** A Lambda target. */
  functionLogicalId?: string;
  /** A state machine target (EventBridge Scheduler): an execution is started. */
  stateMachineArn?: string;
  /** Target `Input` of a rule: a constant JSON payload replacing the event. */
  input?: unknown;
  /** Target `Input` of a Scheduler schedule, as text (context attributes are filled in when it fires). */
  inputText?: string;
  /** The role EventBridge Scheduler assumes for the target. */
  roleArn?: string;
}

export interface ScheduleRule {
  logicalId: string;
  name: string;
  arn: string;
  expression: string;
  schedule: Schedule;
  enabled: boolean;
  targets: ScheduleTarget[];
  /** 'events' (AWS::Events::Rule, the default) or 'scheduler' (AWS::Scheduler::Schedule). */
  source?: 'events' | 'scheduler';
  /** IANA zone of cron() and at() (Scheduler's ScheduleExpressionTimezone). @default 'UTC' */
  timeZone?: string;
  /** Scheduler's StartDate / EndDate (epoch ms): no fire outside them. */
  startDate?: number;
  endDate?: number;
}

const UNIVERSAL_TARGET = /^arn:aws[\w-]*:scheduler:::aws-sdk:(\w+):(\w+)$/;

/** Reads the template's EventBridge Scheduler schedules (AWS::Scheduler::Schedule). */
export function schedulerSchedules(stack: LocalStack, log: (line: string) => void = () => {}): ScheduleRule[] {
  const out: ScheduleRule[] = [];
  for (const [logicalId, r] of stack.resourcesOfType('AWS::Scheduler::Schedule')) {
    const p = (stack.resolve(r.Properties ?? {}, logicalId) ?? {}) as Record<string, any>;
    const where = `${logicalId}.ScheduleExpression`;
    const timeZone = typeof p.ScheduleExpressionTimezone === 'string' ? p.ScheduleExpressionTimezone : 'UTC';
    checkTimeZone(timeZone, `${logicalId}.ScheduleExpressionTimezone`);
    if (p.FlexibleTimeWindow?.Mode !== undefined && p.FlexibleTimeWindow.Mode !== 'OFF') {
      log(`Schedule ${logicalId}: FlexibleTimeWindow ${p.FlexibleTimeWindow.Mode} fires at the start of the window locally (no random delay).`);
    }
    const t = (p.Target ?? {}) as Record<string, any>;
    const arn = String(t.Arn ?? '');
    const target: ScheduleTarget = { id: 'Target', roleArn: typeof t.RoleArn === 'string' ? t.RoleArn : undefined, inputText: typeof t.Input === 'string' ? t.Input : undefined };
    const universal = UNIVERSAL_TARGET.exec(arn);
    if (universal) {
      const call = `${universal[1]}:${universal[2]}`.toLowerCase();
      const params = (target.inputText ? JSON.parse(target.inputText) : {}) as Record<string, unknown>;
      if (call === 'sfn:startexecution') {
        target.stateMachineArn = String(params.StateMachineArn);
        target.inputText = typeof params.Input === 'string' ? params.Input : params.Input === undefined ? undefined : JSON.stringify(params.Input);
      } else if (call === 'lambda:invoke') {
        target.functionLogicalId = stack.functionByArn(String(params.FunctionName).split(':').slice(0, 7).join(':'));
        target.inputText = typeof params.Payload === 'string' ? params.Payload : params.Payload === undefined ? undefined : JSON.stringify(params.Payload);
      } else {
        log(`Schedule ${logicalId}: universal target ${arn} is not emulated (sfn:startExecution and lambda:invoke are); skipped.`);
      }
    } else if (arn.includes(':states:') && arn.includes(':stateMachine:')) {
      target.stateMachineArn = arn;
    } else {
      target.functionLogicalId = stack.functionByArn(arn.split(':').slice(0, 7).join(':'));
      if (!target.functionLogicalId) log(`Schedule ${logicalId}: target ${arn} is neither a function nor a state machine of the template; skipped.`);
    }
    const group = typeof p.GroupName === 'string' ? p.GroupName : 'default';
    const name = typeof p.Name === 'string' ? p.Name : stack.generatedName(logicalId);
    out.push({
      logicalId,
      name,
      arn: `arn:aws:scheduler:${stack.region}:${stack.account}:schedule/${group}/${name}`,
      expression: String(p.ScheduleExpression),
      schedule: parseSchedule(String(p.ScheduleExpression), where, true),
      enabled: p.State === undefined || p.State === 'ENABLED',
      targets: target.functionLogicalId || target.stateMachineArn ? [target] : [],
      source: 'scheduler',
      timeZone,
      startDate: typeof p.StartDate === 'string' ? Date.parse(p.StartDate) : undefined,
      endDate: typeof p.EndDate === 'string' ? Date.parse(p.EndDate) : undefined,
    });
  }
  return out;
}

function checkTimeZone(timeZone: string, where: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    throw new TemplateError(`${where}: '${timeZone}' is not an IANA time zone (e.g. Asia/Shanghai, America/New_York, UTC).`);
  }
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

/** rate() or cron(); with `allowAt` (EventBridge Scheduler) also at(yyyy-mm-ddThh:mm:ss), a one-time schedule. */
export function parseSchedule(expression: string, where = 'ScheduleExpression', allowAt = false): Schedule {
  const at = /^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$/.exec(expression.trim());
  if (at && allowAt) return { kind: 'at', wallClock: at[1]! };
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

// ---- time zones -------------------------------------------------------------------------------

const formatters = new Map<string, Intl.DateTimeFormat>();
/** The wall-clock time of `instant` in `timeZone`, as a Date whose UTC fields are that wall clock. */
function wallClock(instant: number, timeZone: string): number {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(instant)).map((p) => [p.type, p.value]));
  return Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second)) + (instant % 1000 + 1000) % 1000;
}

/**
 * The instants whose wall clock in `timeZone` is `wall` (a Date.UTC of the wall-clock fields): none in a
 * spring-forward gap, two in a fall-back overlap, else one. Offsets are taken a day either side.
 */
export function instantsAt(wall: number, timeZone: string): number[] {
  const offsets = new Set([wall - 86_400_000, wall, wall + 86_400_000].map((t) => wallClock(t, timeZone) - t));
  return [...new Set([...offsets].map((offset) => wall - offset))].filter((t) => wallClock(t, timeZone) === wall).sort((a, b) => a - b);
}

/**
 * The next fire time of a cron expression in a time zone, strictly after `after`, as EventBridge Scheduler
 * handles daylight saving time: a wall-clock time skipped by the spring change does not fire, and one that
 * occurs twice in the fall fires once (at its first occurrence).
 */
export function nextCronTimeIn(fields: CronFields, after: Date, timeZone = 'UTC'): Date | undefined {
  if (timeZone === 'UTC' || timeZone === 'Etc/UTC') return nextCronTime(fields, after);
  let cursor = new Date(wallClock(after.getTime(), timeZone));
  for (let i = 0; i < 10_000; i++) {
    const candidate = nextCronTime(fields, cursor);
    if (!candidate) return undefined;
    const first = instantsAt(candidate.getTime(), timeZone)[0];
    if (first !== undefined && first > after.getTime()) return new Date(first);
    cursor = candidate;
  }
  return undefined;
}

/** The next fire time of a schedule after `after` (rate: one period on), or undefined when there is none. */
export function nextFireTime(rule: ScheduleRule, after: Date, timeScale = 1): Date | undefined {
  const s = rule.schedule;
  if (s.kind === 'rate') return new Date(after.getTime() + s.periodMs / timeScale);
  if (s.kind === 'cron') return nextCronTimeIn(s.fields, after, rule.timeZone);
  const [date, time] = s.wallClock.split('T') as [string, string];
  const [y, mo, d] = date.split('-').map(Number) as [number, number, number];
  const [h, mi, se] = time.split(':').map(Number) as [number, number, number];
  const at = instantsAt(Date.UTC(y, mo - 1, d, h, mi, se), rule.timeZone ?? 'UTC')[0];
  return at !== undefined && at > after.getTime() ? new Date(at) : undefined;
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
  results: { target: string; ok: boolean; error?: string; payload?: unknown; executionArn?: string }[];
}

export class Scheduler {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly nextFires = new Map<string, Date>();
  private runs = 0;
  private stopped = false;

  constructor(
    readonly rules: ScheduleRule[],
    private readonly runtime: LambdaRuntime,
    private readonly options: { account: string; region: string; timeScale?: number; log?: (line: string) => void; iam?: LocalIam; stepFunctions?: LocalStepFunctions },
  ) {}

  /** Starts the timers of every enabled rule. */
  start(): void {
    const timeScale = this.options.timeScale ?? 1;
    for (const rule of this.rules) {
      if (!rule.enabled || rule.targets.length === 0) continue;
      if (rule.schedule.kind === 'rate') {
        const period = Math.max(50, rule.schedule.periodMs / timeScale);
        this.nextFires.set(rule.logicalId, new Date(Date.now() + period));
        const timer = setInterval(() => {
          this.nextFires.set(rule.logicalId, new Date(Date.now() + period));
          if (this.inWindow(rule)) void this.fire(rule);
        }, period);
        timer.unref();
        this.timers.push(timer);
      } else {
        this.scheduleAt(rule);
      }
    }
  }

  private inWindow(rule: ScheduleRule, now = Date.now()): boolean {
    return (rule.startDate === undefined || now >= rule.startDate) && (rule.endDate === undefined || now <= rule.endDate);
  }

  /** cron() and at(): one timer to the next wall-clock fire time (in the rule's zone), re-armed after each. */
  private scheduleAt(rule: ScheduleRule): void {
    if (this.stopped) return;
    const next = nextFireTime(rule, new Date());
    if (!next) {
      this.nextFires.delete(rule.logicalId);
      return;
    }
    this.nextFires.set(rule.logicalId, next);
    // setTimeout caps at ~24.8 days; re-arm in steps.
    const delay = Math.min(next.getTime() - Date.now(), 2 ** 31 - 1);
    const timer = setTimeout(() => {
      if (Date.now() >= next.getTime() && this.inWindow(rule)) void this.fire(rule, next);
      this.scheduleAt(rule);
    }, delay);
    timer.unref();
    this.timers.push(timer);
  }

  /** Fires a rule or schedule now (by logical id or name) and waits for its targets. */
  async trigger(ruleId: string): Promise<ScheduleRun> {
    const rule = this.rules.find((r) => r.logicalId === ruleId || r.name === ruleId);
    if (!rule) throw new Error(`No schedule '${ruleId}' (schedules: ${this.rules.map((r) => r.logicalId).join(', ') || 'none'}).`);
    return this.fire(rule);
  }

  private async fire(rule: ScheduleRule, time = new Date()): Promise<ScheduleRun> {
    if (this.stopped) return { rule: rule.logicalId, time: time.toISOString(), results: [] };
    this.runs++;
    const event = scheduledEvent(rule, this.options.account, this.options.region, time);
    const run = Promise.all(rule.targets.map((t) => (rule.source === 'scheduler' ? this.fireSchedulerTarget(rule, t, time) : this.fireRuleTarget(rule, t, event))));
    this.inFlight.add(run);
    try {
      return { rule: rule.logicalId, time: String(event.time), results: await run };
    } catch (error) {
      return { rule: rule.logicalId, time: String(event.time), results: [{ target: '*', ok: false, error: String(error) }] };
    } finally {
      this.inFlight.delete(run);
    }
  }

  private async fireRuleTarget(rule: ScheduleRule, t: ScheduleTarget, event: Record<string, unknown>): Promise<ScheduleRun['results'][number]> {
    const fn = t.functionLogicalId!;
    // EventBridge may invoke only where the function's resource policy (AWS::Lambda::Permission) allows the rule.
    const ruleArn = `arn:aws:events:${this.options.region}:${this.options.account}:rule/${rule.name}`;
    const permission = await this.options.iam?.authorizeService('events.amazonaws.com', this.runtime.get(fn).definition.arn, ruleArn);
    if (permission && !permission.allowed && !permission.served) {
      return { target: fn, ok: false, error: `AccessDeniedException: ${permission.denial.message}` };
    }
    return this.invoke(rule, fn, t.input ?? event);
  }

  /** EventBridge Scheduler: the target's role (Target.RoleArn) must be allowed the call, as Scheduler makes it in that role's name. */
  private async fireSchedulerTarget(rule: ScheduleRule, t: ScheduleTarget, time: Date): Promise<ScheduleRun['results'][number]> {
    const input = t.inputText === undefined ? undefined : contextAttributes(t.inputText, rule, time);
    const role = t.roleArn ? this.options.iam?.rolePrincipal(t.roleArn, randomUUID().replace(/-/g, '').slice(0, 32)) : undefined;
    if (this.options.iam && !role) return { target: t.functionLogicalId ?? t.stateMachineArn!, ok: false, error: `AccessDeniedException: the schedule's role ${t.roleArn ?? '(none)'} is not a role of the template.` };
    if (t.stateMachineArn) {
      const sfn = this.options.stepFunctions;
      if (!sfn) return { target: t.stateMachineArn, ok: false, error: 'The template has no state machine for the local Step Functions to run.' };
      try {
        const { executionArn } = await sfn.startExecution({ stateMachineArn: t.stateMachineArn, input: input ?? '{}' }, role, `schedule:${rule.logicalId}`);
        return { target: t.stateMachineArn, ok: true, executionArn };
      } catch (error) {
        const e = error as Error;
        this.options.log?.(`Schedule ${rule.logicalId} → ${t.stateMachineArn} failed: ${e.name}: ${e.message}`);
        return { target: t.stateMachineArn, ok: false, error: `${e.name}: ${e.message}` };
      }
    }
    const fn = t.functionLogicalId!;
    if (role) {
      const verdict = await this.options.iam!.authorize(role, [{ action: 'lambda:InvokeFunction', resource: this.runtime.get(fn).definition.arn }]);
      if (!verdict.allowed && !verdict.served) return { target: fn, ok: false, error: `AccessDeniedException: ${verdict.denial.message}` };
    }
    return this.invoke(rule, fn, input === undefined ? {} : JSON.parse(input));
  }

  private async invoke(rule: ScheduleRule, fn: string, payload: unknown): Promise<ScheduleRun['results'][number]> {
    const result: InvokeResult = await this.runtime.invoke(fn, payload);
    if (!result.ok) this.options.log?.(`Schedule ${rule.logicalId} → ${fn} failed: ${result.error.errorType}: ${result.error.errorMessage}`);
    return result.ok ? { target: fn, ok: true, payload: result.payload } : { target: fn, ok: false, error: `${result.error.errorType}: ${result.error.errorMessage}` };
  }

  stats(): {
    runs: number;
    rules: { logicalId: string; kind: 'rule' | 'schedule'; expression: string; timeZone: string; enabled: boolean; targets: string[]; next?: string }[];
  } {
    return {
      runs: this.runs,
      rules: this.rules.map((r) => {
        // The armed timer's time, else (timers off, e.g. in tests) the time the schedule would fire next.
        const next = this.nextFires.get(r.logicalId) ?? (r.enabled ? nextFireTime(r, new Date(), this.options.timeScale ?? 1) : undefined);
        return {
          logicalId: r.logicalId,
          kind: r.source === 'scheduler' ? ('schedule' as const) : ('rule' as const),
          expression: r.expression,
          timeZone: r.timeZone ?? 'UTC',
          enabled: r.enabled,
          targets: r.targets.map((t) => t.functionLogicalId ?? t.stateMachineArn!),
          ...(next ? { next: next.toISOString() } : {}),
        };
      }),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    // In-flight invocations end when the runtime stops its workers; give them a moment first.
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}

/** EventBridge Scheduler's context attributes in a target's Input. */
function contextAttributes(input: string, rule: ScheduleRule, time: Date): string {
  const values: Record<string, string> = {
    '<aws.scheduler.schedule-arn>': rule.arn,
    '<aws.scheduler.scheduled-time>': time.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    '<aws.scheduler.execution-id>': randomUUID(),
    '<aws.scheduler.attempt-number>': '1',
  };
  return input.replace(/<aws\.scheduler\.[a-z-]+>/g, (m) => values[m] ?? m);
}
