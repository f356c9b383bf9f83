import type { z } from 'zod';
import { containsCardNumber } from '../channels/card-numbers';
import { InvalidRequestError } from '../commons/errors';

/**
 * Validates input with a zod schema and turns the first problem into an error that names the
 * parameter, the offending value and the fix. Schemas carry the fix in their own messages;
 * this adds the parameter and the value.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, prefix = ''): z.output<S> {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const param = [path, key].filter(Boolean).join('.');
    throw new InvalidRequestError('parameter_unknown', `Received unknown parameter '${param}'. Remove it: it is not part of this API.`, {
      param,
    });
  }
  const received = 'input' in issue ? describe(issue.input, path) : 'nothing';
  const code = issue.code === 'invalid_type' && issue.input === undefined ? 'parameter_missing' : 'parameter_invalid';
  const what = code === 'parameter_missing' ? `Missing required parameter '${path}'.` : `Invalid '${path}': got ${received}.`;
  // A record key's own rule (length, reserved name) is the fix, not the record's "send an object".
  const fix = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
  throw new InvalidRequestError(code, `${what} ${fix}`, { param: path || undefined });
}

/**
 * The value as the merchant sent it, when that is safe to send back: primitives only (nothing
 * recurses over input). Values under payment_method, or holding a card number, are described by
 * their type, so a card number never travels back into merchants' logs and tickets.
 */
function describe(value: unknown, path: string): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value) ?? String(value);
  if (path === 'payment_method' || path.startsWith('payment_method.')) {
    return typeof value === 'string' ? `a string of ${value.length} characters` : `a ${typeof value}`;
  }
  if (containsCardNumber(text)) return `a ${typeof value}`;
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
