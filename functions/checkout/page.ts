import { randomBytes } from 'node:crypto';
import { luhnValid, normalizePan } from '../channels/cards';
import { formatAmount, LANGS, MESSAGES, type Lang, type Messages } from './i18n';

/** What a checkout page shows of the order (nothing of the payer). */
export interface CheckoutOrder {
  id: string;
  merchant_order_no: string;
  amount: number;
  currency: string;
  description: string | null;
  status: string;
  return_url: string | null;
}

export interface PageContext {
  lang: Lang;
  /** `${baseUrl}/checkout/${id}`: the page's own URL, without query. */
  self: string;
  merchantName: string;
  order: CheckoutOrder;
}

export interface HtmlResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
/** JSON inside a <script>: no `<` so no `</script>` can close it early. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

/** Headers of every checkout response: no caching, no framing, a nonce-only CSP. */
export function securityHeaders(nonce: string, formTargets: string[] = []): Record<string, string> {
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      `style-src 'nonce-${nonce}'`,
      "img-src 'self' data:",
      // Chrome applies form-action to the redirect after a POST too: the merchant's return_url origin is allowed.
      `form-action 'self'${formTargets.map((t) => ` ${t}`).join('')}`,
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    'X-Frame-Options': 'DENY',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  };
}

const originOf = (url: string | null) => {
  if (!url) return [];
  try {
    return [new URL(url).origin];
  } catch {
    return [];
  }
};

// Colours: text #1a1a1a on #fff (17:1), links/buttons #0b57d0 on #fff (6.4:1), white on #0b57d0 (6.4:1),
// errors #b3261e on #fff (6.5:1): all above WCAG AA 4.5:1. Focus: a 3px outline that never disappears.
const CSS = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei","WenQuanYi Micro Hei",sans-serif;color:#1a1a1a;background:#f3f4f6}
main{max-width:28rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.15)}
header{display:flex;justify-content:space-between;align-items:baseline;gap:1rem;max-width:28rem;margin:1rem auto 0;padding:0 .5rem}
nav ul{list-style:none;margin:0;padding:0;display:flex;gap:.75rem}
a{color:#0b57d0}
a[aria-current="true"]{font-weight:700;color:#1a1a1a;text-decoration:none}
h1{font-size:1.4rem;margin:0 0 1rem}
dl{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem;margin:0 0 1.5rem}
dt{color:#4a4a4a}dd{margin:0;font-weight:600}
.amount{font-size:1.6rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input{width:100%;font:inherit;padding:.6rem .75rem;border:2px solid #6b6b6b;border-radius:8px;color:#1a1a1a;background:#fff}
input[aria-invalid="true"]{border-color:#b3261e}
.row{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
.err{color:#b3261e;margin:.25rem 0 0;min-height:0;font-size:.95rem}
.alert{color:#b3261e;font-weight:600;margin:0 0 1rem}
.alert:empty{display:none}
button,.button{display:inline-block;width:100%;margin-top:1.25rem;padding:.8rem 1rem;font:inherit;font-weight:700;color:#fff;background:#0b57d0;border:0;border-radius:8px;cursor:pointer;text-align:center;text-decoration:none}
button.secondary{background:#fff;color:#b3261e;border:2px solid #b3261e}
:focus-visible{outline:3px solid #1a1a1a;outline-offset:2px}
input:focus-visible{outline:3px solid #0b57d0;outline-offset:1px}
.note{color:#4a4a4a;font-size:.9rem;margin-top:1rem}
.ok{color:#146c2e}
`;

function layout(ctx: PageContext, title: string, body: string, opts: { nonce: string; script?: string; status?: number }): HtmlResponse {
  const m = MESSAGES[ctx.lang];
  const switcher = LANGS.map((l) => {
    const label = l === 'en' ? 'English' : '中文';
    const current = l === ctx.lang ? ' aria-current="true"' : '';
    return `<li><a href="?lang=${l}" lang="${l}" hreflang="${l}"${current}>${label}</a></li>`;
  }).join('');
  const html = `<!doctype html>
<html lang="${ctx.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(title)} · ${esc(ctx.merchantName)}</title>
<style nonce="${opts.nonce}">${CSS}</style>
</head>
<body>
<header><span>${esc(m.payTo)} <strong id="merchant">${esc(ctx.merchantName)}</strong></span>
<nav aria-label="${esc(m.language)}"><ul>${switcher}</ul></nav></header>
<main>
${body}
</main>
${opts.script ? `<script nonce="${opts.nonce}">${opts.script}</script>` : ''}
</body>
</html>`;
  return { statusCode: opts.status ?? 200, headers: securityHeaders(opts.nonce, originOf(ctx.order.return_url)), body: html };
}

function summary(ctx: PageContext, m: Messages): string {
  const o = ctx.order;
  return `<dl>
<dt>${esc(m.amount)}</dt><dd class="amount" id="amount">${esc(formatAmount(o.amount, o.currency, ctx.lang))}</dd>
${o.description ? `<dt>${esc(m.description)}</dt><dd id="description">${esc(o.description)}</dd>` : ''}
<dt>${esc(m.order)}</dt><dd>${esc(o.merchant_order_no)}</dd>
</dl>`;
}

export const newNonce = () => randomBytes(16).toString('base64');

/** The card form; `error` is a server-side message (a decline, a validation error) shown in the alert region. */
export function formPage(ctx: PageContext, error?: { title: string; text: string }, status = 200): HtmlResponse {
  const m = MESSAGES[ctx.lang];
  const nonce = newNonce();
  const price = formatAmount(ctx.order.amount, ctx.order.currency, ctx.lang);
  const field = (id: string, label: string, attrs: string) =>
    `<label for="${id}">${esc(label)}</label>
<input id="${id}" name="${id}" ${attrs} aria-describedby="${id}-error" required>
<p class="err" id="${id}-error"></p>`;
  const body = `<h1>${esc(m.title)}</h1>
${summary(ctx, m)}
<div id="form-error" class="alert" role="alert" aria-live="assertive">${error ? `<strong>${esc(error.title)}</strong> ${esc(error.text)}` : ''}</div>
<form id="pay" method="post" action="${esc(ctx.self)}?lang=${ctx.lang}" novalidate>
<input type="hidden" name="lang" value="${ctx.lang}">
${field('number', m.cardNumber, 'inputmode="numeric" autocomplete="cc-number" maxlength="23"')}
<div class="row"><div>${field('exp', m.expiry, 'inputmode="numeric" autocomplete="cc-exp" placeholder="MM/YY" maxlength="7"')}</div>
<div>${field('cvc', m.cvc, 'inputmode="numeric" autocomplete="cc-csc" maxlength="4"')}</div></div>
<button type="submit" id="submit">${esc(m.pay)} ${esc(price)}</button>
</form>
<p class="note">${esc(m.secure)}</p>`;
  // Client-side checks only help the payer; the server validates again. Luhn comes from functions/channels/cards.ts
  // (import-free, so its functions inline as they are, minified or not).
  const script = `(function(){
var normalizePan=(${normalizePan.toString()});
var luhnValid=(${luhnValid.toString()});
var M=${scriptJson({ number: m.errNumber, exp: m.errExpiry, cvc: m.errCvc, fix: m.fixErrors })};
function expiryOk(v){var r=/^\\s*(\\d{1,2})\\s*\\/\\s*(\\d{2}|\\d{4})\\s*$/.exec(v);if(!r)return false;var mo=+r[1],y=+r[2];if(y<100)y+=2000;if(mo<1||mo>12)return false;var now=new Date();return Date.UTC(y,mo,1)>now.getTime();}
var checks={number:function(v){return luhnValid(normalizePan(v))},exp:expiryOk,cvc:function(v){return /^\\d{3,4}$/.test(v.trim())}};
var form=document.getElementById('pay'),alert=document.getElementById('form-error');
function check(id){var el=document.getElementById(id),ok=checks[id](el.value);el.setAttribute('aria-invalid',ok?'false':'true');document.getElementById(id+'-error').textContent=ok?'':M[id];return ok;}
['number','exp','cvc'].forEach(function(id){document.getElementById(id).addEventListener('blur',function(e){if(e.target.value)check(id)})});
form.addEventListener('submit',function(e){var bad=['number','exp','cvc'].filter(function(id){return !check(id)});if(bad.length){e.preventDefault();alert.textContent=M.fix;document.getElementById(bad[0]).focus();return;}document.getElementById('submit').disabled=true;});
})();`;
  return layout(ctx, m.title, body, { nonce, script, status });
}

/** The sandbox's 3-D Secure challenge: approve or fail, each a POST to /checkout/{id}/3ds. */
export function challengePage(ctx: PageContext): HtmlResponse {
  const m = MESSAGES[ctx.lang];
  const body = `<h1>${esc(m.threeDsTitle)}</h1>
${summary(ctx, m)}
<p>${esc(m.threeDsText)}</p>
<form method="post" action="${esc(ctx.self)}/3ds?lang=${ctx.lang}">
<input type="hidden" name="lang" value="${ctx.lang}">
<button type="submit" name="outcome" value="approve">${esc(m.approve)}</button>
<button type="submit" name="outcome" value="fail" class="secondary">${esc(m.fail)}</button>
</form>`;
  return layout(ctx, m.threeDsTitle, body, { nonce: newNonce() });
}

const RESULTS = {
  succeeded: { status: 200, title: 'succeeded', text: 'succeededText' },
  processing: { status: 200, title: 'processing', text: 'processingText' },
  closed: { status: 200, title: 'closed', text: 'closedText' },
  /** The order's decline limit (payments/velocity.ts): no form, only the way out. */
  attemptsExhausted: { status: 409, title: 'attemptsExhausted', text: 'attemptsExhaustedText' },
} as const satisfies Record<string, { status: number; title: keyof Messages; text: keyof Messages }>;

/** Result pages: succeeded (with a signed link back when there is a return_url), processing, closed, attempts exhausted. */
export function resultPage(ctx: PageContext, kind: keyof typeof RESULTS, returnLink?: string): HtmlResponse {
  const m = MESSAGES[ctx.lang];
  const { status, ...keys } = RESULTS[kind];
  const title = m[keys.title];
  const text = m[keys.text];
  const body = `<h1 id="result" class="${kind === 'succeeded' ? 'ok' : ''}" role="status">${esc(title)}</h1>
${summary(ctx, m)}
<p>${esc(text)}</p>
${returnLink ? `<a class="button" href="${esc(returnLink)}">${esc(m.returnToMerchant)}</a>` : ''}`;
  return layout(ctx, title, body, { nonce: newNonce(), status });
}

/** A page for when there is no order to show (unknown id, or an unexpected error). */
export function messagePage(lang: Lang, status: number, which: 'notFound' | 'error'): HtmlResponse {
  const m = MESSAGES[lang];
  const nonce = newNonce();
  const [title, text] = which === 'notFound' ? [m.notFound, m.notFoundText] : [m.error, m.errorText];
  const body = `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title>
<style nonce="${nonce}">${CSS}</style></head><body><main><h1 role="status">${esc(title)}</h1><p>${esc(text)}</p></main></body></html>`;
  return { statusCode: status, headers: securityHeaders(nonce), body };
}
