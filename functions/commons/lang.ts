/** The languages the platform speaks to people: English by default, Simplified Chinese on request. */
export type Lang = 'en' | 'zh-CN';
export const LANGS: readonly Lang[] = ['en', 'zh-CN'];

/** A text in every language: an entry without one of them does not type-check. */
export type Localized = Record<Lang, string>;

/**
 * The first Accept-Language range (RFC 9110 §12.5.4, by q-value, ties in header order) that we speak: any `zh*`
 * (zh, zh-CN, zh-Hans…) → zh-CN, any `en*` → en; `q=0` ranges are refused; nothing we speak → en.
 */
export function negotiateLang(acceptLanguage: string | undefined): Lang {
  const ranges = (acceptLanguage ?? '')
    .split(',')
    .map((part) => {
      const [tag = '', ...params] = part.trim().split(';');
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return { tag: tag.trim().toLowerCase(), q: q ? Number(q.slice(2)) || 0 : 1 };
    })
    .filter((r) => r.tag && r.q > 0)
    .sort((a, b) => b.q - a.q);
  for (const { tag } of ranges) {
    if (tag === 'zh' || tag.startsWith('zh-')) return 'zh-CN';
    if (tag === 'en' || tag.startsWith('en-')) return 'en';
  }
  return 'en';
}
