import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { errorResponse } from '../../functions/http/errors';
import { parseInput } from '../../functions/http/validation';
import { InvalidRequestError, NotFoundError } from '../../functions/commons/errors';
import { LANGS, negotiateLang } from '../../functions/commons/lang';
import { msg } from '../../functions/commons/messages';

/** The error classes whose message reaches a client (expose = true); InternalError's never does. */
const EXPOSED = /new (InvalidRequestError|AuthenticationError|PermissionError|RateLimitError|ConflictError|ContendedError|IdempotencyMismatchError|IdempotencyInProgressError|PayloadTooLargeError)\(\s*([^,]+),\s*([^\s(]+)/g;

/**
 * Exposed codes whose throw sites still pass an English string: they answer in English in every language. The list
 * may only shrink; a new exposed code must come with its catalog entry. These sit outside the merchant API's main
 * path (operator commands, settlement tasks, FX and payout settings, webhook endpoint management).
 */
const NOT_YET_LOCALIZED = [
  "'amount_too_large'", "'audit_chain_contended'", "'balance_insufficient'", "'transfer_exists'", "'cutoff_in_future'", "'fx_rate_contended'", "'fx_rate_exists'", "'iam_identity_missing'",
  "'invalid_actor'", "'invalid_cutoff'", "'invalid_fee_schedule'", "'invalid_fx_currency'", "'invalid_fx_effective_at'",
  "'invalid_fx_markup'", "'invalid_fx_rate'", "'invalid_next'", "'key_roll_conflict'", "'merchant_contended'", "'merchant_exists'",
  "'parameter_invalid'", "'parameter_missing'", "'payout_settings_conflict'", "'receipts_conflict'", "'settlement_contended'",
  "'webhook_endpoint_contended'", "'webhook_endpoint_disabled'",
  "input === undefined ? 'parameter_missing' : 'parameter_invalid'",
];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every exposed throw site in functions/: its code expression and its message expression. */
const sites = sources('functions').flatMap((file) =>
  [...readFileSync(file, 'utf8').matchAll(EXPOSED)].map((m) => ({ file, code: m[2]!.trim(), message: m[3]! })),
);

describe('the error message catalog', () => {
  it('has both languages for every entry, each naming the values it was given', () => {
    for (const [key, entry] of Object.entries(msg)) {
      const text = (entry as (p: unknown) => Record<string, string>)(new Proxy({}, { get: (_, name) => (name === 'fix' || name === 'got' ? { en: 'FIX', 'zh-CN': 'FIX' } : `<${String(name)}>`) }));
      for (const lang of LANGS) expect(text[lang], `${key} ${lang}`).toMatch(/\S/);
      expect(text['zh-CN'], key).toMatch(/[\u4e00-\u9fff]/);
      const quoted = (t: string) => (t.match(/<\w+>/g) ?? []).sort();
      expect(new Set(quoted(text['zh-CN']!)), `${key}: zh-CN quotes what en quotes`).toEqual(new Set(quoted(text.en!)));
    }
  });

  it('is used by a throw site of the code each entry is keyed by, and every exposed code is in it (or on the shrinking list)', () => {
    const localized = sites.filter((s) => s.message.startsWith('msg'));
    // catalog → sites: every entry is used by the code outside the catalog
    const code = sources('functions').filter((f) => !f.endsWith('messages.ts')).map((f) => readFileSync(f, 'utf8')).join('\n');
    const used = new Set([...code.matchAll(/\bmsg(?:\.(\w+)|\['([\w.]+)'\])/g)].map((m) => m[1] ?? m[2]));
    for (const key of Object.keys(msg)) {
      expect(used.has(key), `catalog entry ${key} is never thrown`).toBe(true);
    }
    for (const s of localized) {
      const key = s.message.match(/^msg(?:\.(\w+)|\['([\w.]+)'\])/)!.slice(1).find(Boolean)!;
      const code = key.split('.')[0]!;
      expect([`'${code}'`, `\`${code}_\${from}\``, `\`${code}_\${status}\``, 'ORDER_ATTEMPTS_EXHAUSTED'], `${s.file}: ${s.code} with ${key}`).toContain(s.code);
    }
    // sites → catalog: an exposed code thrown with a plain string is on the list, and the list holds nothing else
    // (inUseMessage is msg.idempotency_key_in_use; the scope check picks one of two missing_scope entries: `needed ? msg.missing_scope(…) : msg['missing_scope.route'](…)`)
    const english = [...new Set(sites.filter((s) => !s.message.startsWith('msg') && s.message !== 'needed' && !s.message.startsWith('inUseMessage')).map((s) => s.code))].sort();
    expect(english).toEqual([...NOT_YET_LOCALIZED].sort());
  });
});

describe('Accept-Language negotiation', () => {
  it.each([
    [undefined, 'en'],
    ['', 'en'],
    ['zh-CN', 'zh-CN'],
    ['zh', 'zh-CN'],
    ['zh-Hans', 'zh-CN'],
    ['zh-Hans-CN', 'zh-CN'],
    ['ZH-cn', 'zh-CN'],
    ['en-US,zh-CN;q=0.9', 'en'],
    ['en;q=0.5, zh-CN;q=0.8', 'zh-CN'],
    ['zh-CN;q=0, en', 'en'],
    ['fr-FR, zh;q=0.3', 'zh-CN'],
    ['fr-FR', 'en'],
    ['zhx', 'en'],
    ['*', 'en'],
  ])('%s → %s', (header, lang) => {
    expect(negotiateLang(header)).toBe(lang);
  });
});

describe('errorResponse', () => {
  const body = (error: unknown, lang: 'en' | 'zh-CN') => JSON.parse(errorResponse(error, 'req_1', lang).body).error;

  it('answers a zod issue in Chinese with the same type, code and param, naming the field, the value and the fix', () => {
    const schema = z.strictObject({ amount: z.number().int().min(1, 'Send a positive integer amount in minor units, e.g. 1000.') });
    let error: unknown;
    try {
      parseInput(schema, { amount: -5 });
    } catch (e) {
      error = e;
    }
    const en = body(error, 'en');
    const zh = body(error, 'zh-CN');
    expect(en.message).toBe("Invalid 'amount': got -5. Send a positive integer amount in minor units, e.g. 1000.");
    expect(zh.message).toContain("参数 'amount' 无效：收到 -5。");
    expect(zh.message).toContain('最小为 1');
    expect({ type: zh.type, code: zh.code, param: zh.param }).toEqual({ type: en.type, code: 'parameter_invalid', param: 'amount' });
  });

  it('names a missing field in both languages', () => {
    let error: unknown;
    try {
      parseInput(z.strictObject({ currency: z.string() }), {});
    } catch (e) {
      error = e;
    }
    expect(body(error, 'en')).toMatchObject({ code: 'parameter_missing', param: 'currency', message: expect.stringContaining("Missing required parameter 'currency'") });
    expect(body(error, 'zh-CN')).toMatchObject({ code: 'parameter_missing', param: 'currency', message: expect.stringContaining("缺少必填参数 'currency'") });
  });

  it('localizes catalog errors and the 5xx text, and leaves English where a site has no entry yet', () => {
    expect(body(new NotFoundError('order', 'ord_1'), 'zh-CN').message).toBe("不存在的 order：'ord_1'。请检查该 id，以及它是否属于当前使用的 API 密钥。");
    expect(body(new Error('boom'), 'zh-CN').message).toMatch(/^我方发生了意外错误/);
    expect(body(new InvalidRequestError('x', 'Plain English.'), 'zh-CN').message).toBe('Plain English.');
  });
});
