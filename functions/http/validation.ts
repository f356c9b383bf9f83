import type { z } from 'zod';
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
  const received = 'input' in issue ? describe(issue.input) : 'nothing';
  const code = issue.code === 'invalid_type' && issue.input === undefined ? 'parameter_missing' : 'parameter_invalid';
  const what = code === 'parameter_missing' ? `Missing required parameter '${path}'.` : `Invalid '${path}': got ${received}.`;
  throw new InvalidRequestError(code, `${what} ${issue.message}`, { param: path || undefined });
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
