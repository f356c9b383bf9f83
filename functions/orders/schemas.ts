import * as z from 'zod';
import { containsCardNumber } from '../channels/card-numbers';
import { addressKind } from '../commons/addresses';
import { currency, MAX_AMOUNT } from '../commons/money';
import { ORDER_STATUSES, PAYER_LOCALES } from './order';

/** Request schemas. Each message says how to fix the value; `parseInput` adds the field and the value. */

const MIN_EXPIRES_IN = 60;
const MAX_EXPIRES_IN = 15 * 24 * 60 * 60;

/**
 * Free text is stored and shown as sent, so a card number typed into it would rest in plaintext and
 * travel back to the merchant. merchant_order_no is exempt (one random 16-digit number in ten passes
 * Luhn, and merchants use numeric order numbers), and so are the URLs and payer.phone for the same
 * reason (E.164 numbers such as +49 mobiles are 13 digits starting with 4).
 */
const freeText = (max: number, typeError = 'Send a string.') =>
  z
    .string({ error: typeError })
    .max(max, `Use at most ${max} characters.`)
    .refine(
      (text) => !containsCardNumber(text),
      'It holds what looks like a card number (a long run of digits with a card-brand prefix that passes the Luhn check), which this field must never store. Remove it: take cards through payment_method or the hosted checkout.',
    );

/**
 * Keys the DynamoDB marshaller cannot store as a map key faithfully: an own `constructor` makes it
 * refuse the whole map ("Unsupported type passed"), and `__proto__` is dropped on the way back.
 */
const RESERVED_METADATA_KEYS = ['__proto__', 'constructor'];
const reservedKeyMessage = (key: string) => `'${key}' is a reserved name. Use another key.`;

export const merchantOrderNo = z
  .string({ error: 'Send a string of 1-64 characters.' })
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'Use 1-64 characters from A-Z, a-z, 0-9, "_" and "-".');

/**
 * notify_url / return_url: https, to a public host. A literal loopback, private or link-local address is
 * refused (the platform would call into its own network); loopback is allowed only where the stage itself is
 * served on loopback, i.e. the local cloud, so merchants can test against their own machine.
 */
export const callbackUrl = (livemode: boolean, loopbackAllowed: boolean) =>
  z
    .string({ error: 'Send an absolute URL string.' })
    .max(2048, 'Use at most 2048 characters.')
    .superRefine((value, ctx) => {
      const fail = (message: string) => ctx.addIssue({ code: 'custom', message, input: value });
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        return fail('Send an absolute URL such as "https://shop.example/payplane/notify".');
      }
      const kind = addressKind(url.hostname);
      const loopback = kind === 'loopback' && loopbackAllowed && !livemode;
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
        return fail(loopbackAllowed ? 'Use an https:// URL (http:// is allowed for loopback hosts such as 127.0.0.1 in the local cloud).' : 'Use an https:// URL.');
      }
      if (kind && !loopback) {
        const where = kind === 'loopback' ? ' Only the local cloud (npm start) calls loopback URLs.' : '';
        fail(`${url.hostname} is a ${kind} address, which the platform never calls.${where} Use a URL on a public host name, e.g. "https://shop.example/payplane".`);
      }
    });

/** `loopbackCallbacks`: the stage is served on loopback (the local cloud), so callbacks to loopback work. */
export function createOrderSchema(livemode: boolean, loopbackCallbacks = false) {
  return z
    .object({
      merchant_order_no: merchantOrderNo,
      amount: z
        .number({ error: 'Send an integer number of minor units, e.g. 1050 for USD 10.50.' })
        .int('Send an integer number of minor units (no decimals): for USD 10.50 send 1050, for JPY 500 send 500.')
        .min(1, 'Send an amount greater than 0.')
        .max(MAX_AMOUNT, `Send at most ${MAX_AMOUNT} minor units.`),
      currency: z
        .string({ error: 'Send a three-letter ISO 4217 code such as "USD".' })
        .transform((code) => code.toUpperCase())
        .refine((code) => currency(code) !== undefined, 'Use an ISO 4217 currency code such as "USD", "EUR", "CNY", "JPY" or "KWD".'),
      description: freeText(500).optional(),
      payer: z
        .object({
          name: freeText(200).min(1, 'Send a non-empty name.').optional(),
          email: z
            .email('Send a valid email address such as "payer@example.com".')
            .max(254, 'Use at most 254 characters.')
            .refine((email) => !containsCardNumber(email), 'It holds what looks like a card number. Send the payer\'s real email address.')
            .optional(),
          phone: z
            .string({ error: 'Send a string.' })
            .regex(/^\+[1-9]\d{6,14}$/, 'Use E.164 format: "+" then country code and number, e.g. "+8613800138000".')
            .optional(),
          // The receipts' language; the hosted checkout's language fills it when absent.
          locale: z.enum(PAYER_LOCALES, { error: `Use one of ${PAYER_LOCALES.map((l) => `"${l}"`).join(', ')} (case as shown), or leave it out for the checkout's language.` }).optional(),
        }, { error: 'Send an object with name, email, phone and/or locale.' })
        .strict()
        .optional(),
      notify_url: callbackUrl(livemode, loopbackCallbacks).optional(),
      return_url: callbackUrl(livemode, loopbackCallbacks).optional(),
      expires_in: z
        .number({ error: `Send an integer number of seconds between ${MIN_EXPIRES_IN} and ${MAX_EXPIRES_IN}.` })
        .int(`Send an integer number of seconds between ${MIN_EXPIRES_IN} and ${MAX_EXPIRES_IN}.`)
        .min(MIN_EXPIRES_IN, `Send at least ${MIN_EXPIRES_IN} seconds (1 minute).`)
        .max(MAX_EXPIRES_IN, `Send at most ${MAX_EXPIRES_IN} seconds (15 days).`)
        .default(30 * 60),
      capture_method: z
        .enum(['automatic', 'manual'], { error: 'Use "automatic" or "manual".' })
        .default('automatic'),
      metadata: z
        .unknown()
        .superRefine((m, ctx) => {
          // zod drops a `__proto__` key silently; refuse it instead of losing it.
          if (m && typeof m === 'object' && Object.hasOwn(m, '__proto__')) {
            ctx.addIssue({ code: 'custom', path: ['__proto__'], input: '__proto__', message: reservedKeyMessage('__proto__') });
          }
        })
        .pipe(
          z.record(
            freeText(40)
              .min(1, 'Use keys of 1-40 characters.')
              .refine((key) => !RESERVED_METADATA_KEYS.includes(key), { error: (issue) => reservedKeyMessage(String(issue.input)) }),
            freeText(500, 'Metadata values must be strings.'),
            { error: 'Send an object of string keys to string values.' },
          ),
        )
        .refine((m) => Object.keys(m).length <= 20, {
          error: (issue) => `It has ${Object.keys(issue.input as object).length} keys; send at most 20.`,
        })
        .default({}),
    }, { error: 'Send a JSON object.' })
    .strict();
}

export type CreateOrderInput = z.output<ReturnType<typeof createOrderSchema>>;

/** Unix seconds (as Stripe sends) or an ISO 8601 timestamp. */
export const instant = z
  .string()
  .refine((v) => (/^\d{1,12}$/.test(v) ? true : /^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v))), 'Use unix seconds (e.g. 1767225600) or an ISO 8601 timestamp (e.g. 2026-01-01T00:00:00Z).')
  .transform((v) => new Date(/^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v)));

/** `limit` of every list route (a query string value): 1-100, default 10. */
export const pageLimit = z
  .string()
  .regex(/^\d+$/, 'Send an integer between 1 and 100.')
  .transform(Number)
  .refine((n) => n >= 1 && n <= 100, 'Send an integer between 1 and 100.')
  .default(10);

export const listOrdersSchema = z
  .object({
    limit: pageLimit,
    starting_after: z.string().regex(/^ord_[A-Za-z0-9]{1,64}$/, 'Send the id of an order from the previous page, e.g. "ord_...".').optional(),
    status: z.enum(ORDER_STATUSES, { error: `Use one of: ${ORDER_STATUSES.join(', ')}.` }).optional(),
    merchant_order_no: merchantOrderNo.optional(),
    'created[gte]': instant.optional(),
    'created[lt]': instant.optional(),
  })
  .strict();

export type ListOrdersInput = z.output<typeof listOrdersSchema>;

export const orderIdSchema = z.string().regex(/^ord_[A-Za-z0-9]{1,64}$/, 'Order ids look like "ord_" followed by letters and digits.');
