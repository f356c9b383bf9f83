import { TemplateError } from './template';

/**
 * EventBridge-style event patterns, as Lambda event source mappings use them in FilterCriteria
 * (`{"Filters": [{"Pattern": "{\"body\": {\"type\": [\"payment\"]}}"}]}`); EventBridge rules with an
 * EventPattern can use the same matcher.
 *
 * Supported: literal values (string, number, boolean, null; a list matches any), nested objects,
 * `prefix`, `suffix`, `equals-ignore-case`, `anything-but` (a value, a list, or `{prefix|suffix}`),
 * `numeric` (`["<", 10, ">=", 0]`…), `exists`, `wildcard` and `$or`. Anything else is refused when the
 * template is read, so a filter the local cloud does not understand never silently lets events through.
 */

export type EventPattern = Record<string, unknown>;

type Json = Record<string, unknown>;

const OPERATORS = new Set(['prefix', 'suffix', 'equals-ignore-case', 'anything-but', 'numeric', 'exists', 'wildcard']);

/** Parses and validates one pattern (a JSON string or an object). `where` names it in errors. */
export function compilePattern(pattern: unknown, where: string): EventPattern {
  let parsed: unknown = pattern;
  if (typeof pattern === 'string') {
    try {
      parsed = JSON.parse(pattern);
    } catch (error) {
      throw new TemplateError(`${where}: the filter pattern is not JSON: ${(error as Error).message}`);
    }
  }
  if (!isObject(parsed)) throw new TemplateError(`${where}: a filter pattern must be a JSON object, got ${JSON.stringify(parsed)}.`);
  validate(parsed, where);
  return parsed;
}

function validate(pattern: Json, where: string): void {
  for (const [key, value] of Object.entries(pattern)) {
    const at = `${where}.${key}`;
    if (key === '$or') {
      if (!Array.isArray(value) || value.length < 2 || !value.every(isObject)) throw new TemplateError(`${at}: $or needs a list of at least two patterns.`);
      value.forEach((p, i) => validate(p as Json, `${at}[${i}]`));
    } else if (Array.isArray(value)) {
      if (value.length === 0) throw new TemplateError(`${at}: an empty list matches nothing; EventBridge refuses it.`);
      for (const v of value) if (isObject(v)) validateOperator(v, at);
    } else if (isObject(value)) {
      validate(value, at);
    } else {
      throw new TemplateError(`${at}: pattern values must be lists or objects (e.g. ["value"]), got ${JSON.stringify(value)}.`);
    }
  }
}

function validateOperator(op: Json, at: string): void {
  const keys = Object.keys(op);
  if (keys.length !== 1 || !OPERATORS.has(keys[0]!)) {
    throw new TemplateError(`${at}: filter operator ${JSON.stringify(op)} is not supported by the local cloud (supported: ${[...OPERATORS].join(', ')}).`);
  }
  const [name] = keys as [string];
  const arg = op[name];
  if (name === 'numeric') {
    if (!Array.isArray(arg) || arg.length % 2 !== 0 || arg.length === 0) throw new TemplateError(`${at}: numeric takes pairs like ["<", 10, ">=", 0].`);
    for (let i = 0; i < arg.length; i += 2) {
      if (!['=', '<', '<=', '>', '>='].includes(String(arg[i])) || typeof arg[i + 1] !== 'number') {
        throw new TemplateError(`${at}: numeric operator ${JSON.stringify(arg[i])} ${JSON.stringify(arg[i + 1])} is invalid.`);
      }
    }
  }
  if (name === 'exists' && typeof arg !== 'boolean') throw new TemplateError(`${at}: exists takes true or false.`);
}

/** Whether `event` matches `pattern`. */
export function matchesPattern(pattern: EventPattern, event: unknown): boolean {
  for (const [key, expected] of Object.entries(pattern)) {
    if (key === '$or') {
      if (!(expected as EventPattern[]).some((p) => matchesPattern(p, event))) return false;
      continue;
    }
    const present = isObject(event) && key in event;
    const actual = present ? (event as Json)[key] : undefined;
    if (Array.isArray(expected)) {
      if (!matchesValues(expected, present, actual)) return false;
    } else if (!present || !matchesPattern(expected as EventPattern, actual)) {
      return false;
    }
  }
  return true;
}

function matchesValues(expected: unknown[], present: boolean, actual: unknown): boolean {
  // A list in the event matches if any of its elements does.
  const candidates = Array.isArray(actual) ? actual : [actual];
  return expected.some((rule) => {
    if (isObject(rule) && 'exists' in rule) return rule.exists === (present && actual !== undefined);
    if (!present) return false;
    return candidates.some((value) => matchesOne(rule, value));
  });
}

function matchesOne(rule: unknown, value: unknown): boolean {
  if (!isObject(rule)) {
    // Literals match by JSON type and value: the number 5 does not match the string "5".
    return rule === value;
  }
  const [[name, arg]] = Object.entries(rule) as [[string, unknown]];
  switch (name) {
    case 'prefix':
      return isObject(arg) ? typeof value === 'string' && value.toLowerCase().startsWith(String(arg['equals-ignore-case']).toLowerCase()) : typeof value === 'string' && value.startsWith(String(arg));
    case 'suffix':
      return isObject(arg) ? typeof value === 'string' && value.toLowerCase().endsWith(String(arg['equals-ignore-case']).toLowerCase()) : typeof value === 'string' && value.endsWith(String(arg));
    case 'equals-ignore-case':
      return typeof value === 'string' && value.toLowerCase() === String(arg).toLowerCase();
    case 'anything-but':
      if (isObject(arg)) return !matchesOne(arg, value);
      return !(Array.isArray(arg) ? arg : [arg]).some((a) => matchesOne(a, value));
    case 'numeric': {
      // Numbers, and numeric strings (DynamoDB's {"N": "5"} images carry numbers as strings).
      const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
      if (Number.isNaN(n)) return false;
      const ops = arg as unknown[];
      for (let i = 0; i < ops.length; i += 2) {
        const bound = ops[i + 1] as number;
        const ok = { '=': n === bound, '<': n < bound, '<=': n <= bound, '>': n > bound, '>=': n >= bound }[String(ops[i])];
        if (!ok) return false;
      }
      return true;
    }
    case 'wildcard': {
      if (typeof value !== 'string') return false;
      const regex = new RegExp(`^${String(arg).split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
      return regex.test(value);
    }
    default:
      return false;
  }
}

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
