import rapidoc from 'rapidoc/dist/rapidoc-min.js' with { type: 'text' };

/**
 * The API reference at /docs: RapiDoc (a web component; its ~850 KB build is the only renderer of the well-kept
 * ones that fits a 1 MB bundle, and it has a "try" console and a copyable curl for every route), served with the
 * spec from GET /v1/openapi.json on the same origin, so the page loads nothing from anywhere else.
 */
export interface Asset {
  contentType: string;
  body: string;
  cacheControl: string;
}

/**
 * Strict for scripts: only this origin's file, no inline script, no eval; requests only to this origin (the try-it
 * console calls the API here); no fonts or images from elsewhere, no frames, no forms, no base tag. Styles allow
 * 'unsafe-inline' because RapiDoc's templates carry style attributes (a page with no secrets of its own and no
 * script injection point: CSS alone cannot run code).
 */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const attr = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * The page. `basePath` is the stage's path as the browser asked for it (`/dev`, or `` under a custom domain): the
 * script below turns it into the try-it console's server with the page's own origin, which the browser knows,
 * so no URL is built from a request's Host header.
 */
export function page(basePath: string): string {
  const base = attr(basePath);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Payplane API reference</title>
<script type="module" src="${base}/docs/rapidoc.js"></script></head>
<body>
<rapi-doc data-base="${base}" spec-url="${base}/v1/openapi.json" render-style="view" show-header="false"
  allow-server-selection="false" allow-authentication="true" allow-try="true" schema-style="table"
  regular-font="system-ui, sans-serif" mono-font="ui-monospace, monospace" theme="light" primary-color="#4f46e5"
  persist-auth="false" load-fonts="false"></rapi-doc>
</body></html>`;
}

/** Runs before RapiDoc defines its element (a module script runs after the page is parsed), in the same file: no inline script. */
const SET_SERVER = `{const d=document.querySelector('rapi-doc');if(d){const u=location.origin+d.dataset.base;d.setAttribute('server-url',u);d.setAttribute('default-api-server',u);}}\n`;

/** The routes under /docs besides the page, by their API Gateway resource path. */
export const DOCS_ASSETS: Readonly<Record<string, Asset>> = {
  '/docs/rapidoc.js': { contentType: 'text/javascript; charset=utf-8', body: SET_SERVER + rapidoc, cacheControl: 'public, max-age=3600' },
};
