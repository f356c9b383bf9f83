import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { normalizePan } from '../channels/cards';
import { CardDeclinedError, ChannelError } from '../channels/errors';
import { dynamo } from '../commons/clients';
import { publicBaseUrl, required } from '../commons/config';
import { ConflictError, InvalidRequestError, NotFoundError } from '../commons/errors';
import { lambda } from '../commons/lambda';
import { logger } from '../commons/logger';
import { chooseLang, failureText, MESSAGES, type Lang } from '../checkout/i18n';
import { challengePage, formPage, messagePage, resultPage, securityHeaders, newNonce, type CheckoutOrder, type PageContext } from '../checkout/page';
import { signedReturnUrl } from '../checkout/sign';
import { getMerchant } from '../merchants/repository';
import { orderIdSchema } from '../orders/schemas';
import { payments, PaymentRepository, type ApiPaymentOrder } from '../payments';
import { ORDER_ATTEMPTS_EXHAUSTED } from '../payments/velocity';

/**
 * The hosted checkout (public: the payer's browser has no API key; the unguessable order id is the capability).
 *
 *   GET  /checkout/{id}       the card form, or the order's current state (3-D Secure → challenge, paid → result)
 *   POST /checkout/{id}       form submit → payments().confirm as the order's merchant; decline → the form again
 *   GET  /checkout/{id}/3ds   the sandbox challenge (approve / fail)
 *   POST /checkout/{id}/3ds   → payments().completeThreeDSecure
 *
 * Success → 303 to return_url with signed parameters (checkout/sign.ts), or to the result page without one.
 * Every answer is server-rendered HTML with a nonce CSP, HSTS, X-Frame-Options DENY and Cache-Control no-store.
 */

let repo: PaymentRepository | undefined;
const orders = () => (repo ??= new PaymentRepository(required('TABLE_NAME')));

function formOf(event: APIGatewayProxyEvent): Record<string, string> {
  if (!event.body) return {};
  const raw = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  if (raw.length > 8192) return {};
  return Object.fromEntries(new URLSearchParams(raw));
}

const redirect = (location: string): APIGatewayProxyResult => ({
  statusCode: 303,
  headers: { ...securityHeaders(newNonce()), Location: location },
  body: '',
});

const view = (o: ApiPaymentOrder): CheckoutOrder => ({
  id: o.id,
  merchant_order_no: o.merchant_order_no,
  amount: o.amount,
  currency: o.currency,
  description: o.description,
  status: o.status,
  return_url: o.return_url,
});

/** "12/34", "12 / 2034", "1234" → month and four-digit year. */
function parseExpiry(value: string): { month: number; year: number } | undefined {
  const m = /^\s*(\d{1,2})\s*\/?\s*(\d{2}|\d{4})\s*$/.exec(value);
  if (!m) return undefined;
  const year = Number(m[2]);
  return { month: Number(m[1]), year: year < 100 ? 2000 + year : year };
}

function fieldMessage(lang: Lang, param: string | undefined, fallback: string): string {
  const m = MESSAGES[lang];
  if (!param) return lang === 'en' ? fallback : m.errorText;
  if (param.includes('number')) return m.errNumber;
  if (param.includes('exp')) return m.errExpiry;
  if (param.includes('cvc')) return m.errCvc;
  return lang === 'en' ? fallback : m.errorText;
}

export const handler = lambda<APIGatewayProxyEvent, APIGatewayProxyResult>().handler(async (event) => {
  const headers = Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v ?? '']));
  const form = event.httpMethod === 'POST' ? formOf(event) : {};
  const lang = chooseLang(event.queryStringParameters?.lang ?? form.lang, headers['accept-language']);
  const m = MESSAGES[lang];
  const id = event.pathParameters?.id ?? '';
  const threeDs = event.path.endsWith('/3ds');
  const now = new Date();
  const baseUrl = publicBaseUrl();
  const self = `${baseUrl}/checkout/${id}`;
  const here = `${self}?lang=${lang}`;

  try {
    if (!orderIdSchema.safeParse(id).success) return messagePage(lang, 404, 'notFound');
    const merchantId = await orders().merchantOfOrder(id);
    if (!merchantId) return messagePage(lang, 404, 'notFound');
    // The page shows no payer data, and this function may not decrypt it.
    // The page's language is the payer's: a confirm stores it on the order for the receipts (if it has none).
    const caller = { merchantId, baseUrl, now, payer: false as const, payerLocale: lang };
    const merchant = await getMerchant({ db: dynamo(), tableName: required('TABLE_NAME') }, merchantId);
    let order = await payments().getOrder(caller, id);
    const ctx = (): PageContext => ({ lang, self, merchantName: merchant?.name ?? '', order: view(order) });

    /** Where the payer goes once an attempt has an answer. */
    const after = async (): Promise<APIGatewayProxyResult> => {
      switch (order.status) {
        case 'succeeded':
        case 'requires_capture':
          return redirect(order.return_url ? await signedReturnUrl(order.return_url, merchantId, order, now) : here);
        case 'requires_action':
          return redirect(`${self}/3ds?lang=${lang}`);
        case 'requires_payment': {
          const e = order.last_payment_error;
          const title = threeDs ? m.threeDsFailed : e?.type === 'api_error' ? m.error : m.declined;
          return formPage(ctx(), { title, text: failureText(lang, e?.decline_code) }, 402);
        }
        default:
          return redirect(here);
      }
    };

    if (event.httpMethod === 'GET' && !threeDs) {
      switch (order.status) {
        case 'requires_payment':
          return formPage(ctx());
        case 'requires_action':
          return redirect(`${self}/3ds?lang=${lang}`);
        case 'processing':
          return resultPage(ctx(), 'processing');
        case 'succeeded':
        case 'requires_capture':
          return resultPage(ctx(), 'succeeded', order.return_url ? await signedReturnUrl(order.return_url, merchantId, order, now) : undefined);
        default:
          return resultPage(ctx(), 'closed');
      }
    }
    if (event.httpMethod === 'GET') return order.status === 'requires_action' ? challengePage(ctx()) : redirect(here);

    if (!threeDs) {
      if (order.status !== 'requires_payment') return redirect(here); // a resubmit: show where the order is
      const expiry = parseExpiry(form.exp ?? '');
      if (!expiry) return formPage(ctx(), { title: m.fixErrors, text: m.errExpiry }, 400);
      try {
        order = await payments().confirm(caller, id, {
          payment_method: {
            type: 'card',
            card: { number: normalizePan(form.number ?? ''), exp_month: expiry.month, exp_year: expiry.year, cvc: (form.cvc ?? '').trim() },
          },
        });
      } catch (error) {
        // The card-testing limits (payments/velocity.ts) refuse before the channel: nothing is recorded on the order.
        if (error instanceof CardDeclinedError && error.declineCode === 'card_velocity_exceeded') {
          return formPage(ctx(), { title: m.declined, text: failureText(lang, error.declineCode) }, 402);
        }
        if (error instanceof ConflictError && error.code === ORDER_ATTEMPTS_EXHAUSTED) return resultPage(ctx(), 'attemptsExhausted');
        // A decline, or a channel failure (processing_error), is recorded on the order before it is thrown.
        if (error instanceof ChannelError) {
          if (!(error instanceof CardDeclinedError)) logger.warn('checkout: channel error', { orderId: id, error });
          order = await payments().getOrder(caller, id);
          return after();
        }
        if (error instanceof InvalidRequestError) return formPage(ctx(), { title: m.fixErrors, text: fieldMessage(lang, error.param, error.message) }, 400);
        if (error instanceof ConflictError) return redirect(here); // a concurrent submit won: show its result
        throw error;
      }
      return after();
    }

    if (order.status !== 'requires_action') return redirect(here);
    try {
      order = await payments().completeThreeDSecure(caller, id, form.outcome === 'approve' ? 'approve' : 'fail');
    } catch (error) {
      if (error instanceof ConflictError) return redirect(here);
      throw error;
    }
    return after();
  } catch (error) {
    if (error instanceof NotFoundError) return messagePage(lang, 404, 'notFound');
    logger.error('checkout failed', { orderId: id, method: event.httpMethod, threeDs, error: error as Error });
    return messagePage(lang, 500, 'error');
  }
});
