import type { z } from 'zod';
import { containsCardNumber } from '../channels/card-numbers';
import { InvalidRequestError } from '../commons/errors';
import type { Localized } from '../commons/lang';
import { msg } from '../commons/messages';

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
    throw new InvalidRequestError('parameter_unknown', msg.parameter_unknown({ param }), { param });
  }
  // A record key's own rule (length, reserved name) is the fix, not the record's "send an object".
  const rule = issue.code === 'invalid_key' ? (issue.issues[0] ?? issue) : issue;
  const fix: Localized = { en: rule.message, 'zh-CN': zhFix(rule) };
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    throw new InvalidRequestError('parameter_missing', msg.parameter_missing({ param: path, fix }), { param: path || undefined });
  }
  const got = 'input' in issue ? describe(issue.input, path) : NOTHING;
  throw new InvalidRequestError('parameter_invalid', msg.parameter_invalid({ param: path, got, fix }), { param: path || undefined });
}

const NOTHING: Localized = { en: 'nothing', 'zh-CN': '无' };

/**
 * The fix in Chinese, from what the issue says about the rule (zod's issue fields, not its English text): the
 * schemas write their fixes in English for merchants' developers, and the rule they state is in the issue itself.
 * A custom rule (a refine) has only its English text, which is quoted after the Chinese lead-in.
 */
function zhFix(rule: { code: string; message: string }): string {
  const issue = rule as typeof rule & Record<string, unknown>;
  const n = (v: unknown) => String(v);
  const unit = issue.origin === 'string' ? ' 个字符' : issue.origin === 'array' || issue.origin === 'set' ? ' 项' : '';
  switch (issue.code) {
    case 'invalid_type':
      return `请发送 ${n(issue.expected)} 类型的值。（${issue.message}）`;
    case 'too_small':
      return `最小为 ${n(issue.minimum)}${unit}${issue.inclusive === false ? '（不含）' : ''}，请增大该值。（${issue.message}）`;
    case 'too_big':
      return `最大为 ${n(issue.maximum)}${unit}${issue.inclusive === false ? '（不含）' : ''}，请减小该值。（${issue.message}）`;
    case 'invalid_format':
      return `格式应为 ${n(issue.format)}${issue.pattern ? ` ${n(issue.pattern)}` : ''}，请按格式发送。（${issue.message}）`;
    case 'invalid_value':
      return `请使用以下值之一：${(issue.values as unknown[] | undefined)?.map((v) => JSON.stringify(v)).join('、') ?? ''}。（${issue.message}）`;
    case 'not_multiple_of':
      return `该值必须是 ${n(issue.divisor)} 的倍数。（${issue.message}）`;
    default:
      return `请按此要求修正：${issue.message}`;
  }
}

/**
 * The value as the merchant sent it, when that is safe to send back: primitives only (nothing
 * recurses over input). Values under payment_method, or holding a card number, are described by
 * their type, so a card number never travels back into merchants' logs and tickets.
 */
function describe(value: unknown, path: string): Localized {
  if (value === undefined) return NOTHING;
  if (value === null) return same('null');
  if (Array.isArray(value)) return { en: `an array of ${value.length} item${value.length === 1 ? '' : 's'}`, 'zh-CN': `包含 ${value.length} 项的数组` };
  if (typeof value === 'object') return { en: 'an object', 'zh-CN': '一个对象' };
  const text = JSON.stringify(value) ?? String(value);
  if (path === 'payment_method' || path.startsWith('payment_method.')) {
    return typeof value === 'string' ? { en: `a string of ${value.length} characters`, 'zh-CN': `长度为 ${value.length} 的字符串` } : { en: `a ${typeof value}`, 'zh-CN': `一个 ${typeof value}` };
  }
  if (containsCardNumber(text)) return { en: `a ${typeof value}`, 'zh-CN': `一个 ${typeof value}` };
  return same(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

const same = (text: string): Localized => ({ en: text, 'zh-CN': text });
