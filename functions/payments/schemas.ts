import * as z from 'zod';
import { MAX_AMOUNT } from '../commons/money';
import { luhnValid, normalizePan } from '../channels/cards';
import { parseInput } from '../http/validation';
import { REFUND_REASONS } from './payment';

/**
 * Request schemas. Messages say how to fix the value; `parseInput` adds the field and the value
 * (by its type only under payment_method, so card numbers and CVCs are never echoed).
 */
const amount = z
  .number({ error: 'Send an integer number of minor units, e.g. 1050 for USD 10.50.' })
  .int('Send an integer number of minor units (no decimals).')
  .min(1, 'Send an amount greater than 0.')
  .max(MAX_AMOUNT, `Send at most ${MAX_AMOUNT} minor units.`);

const card = z
  .object(
    {
      number: z
        .string({ error: 'Send the card number as a string of 12-19 digits.' })
        .transform(normalizePan)
        .refine((pan) => /^\d{12,19}$/.test(pan), 'Send 12-19 digits (spaces and dashes are allowed between groups).')
        .refine((pan) => luhnValid(pan), 'The check digit is wrong (Luhn): check the number for a typo.'),
      exp_month: z
        .number({ error: 'Send the expiry month as an integer 1-12.' })
        .int('Send the expiry month as an integer 1-12.')
        .min(1, 'Send a month from 1 to 12.')
        .max(12, 'Send a month from 1 to 12.'),
      exp_year: z
        .number({ error: 'Send the expiry year as an integer, e.g. 2030.' })
        .int('Send the expiry year as an integer, e.g. 2030.')
        .min(0, 'Send a year such as 2030 (or 30).')
        .max(2100, 'Send a year such as 2030 (or 30).')
        .transform((y) => (y < 100 ? 2000 + y : y))
        .refine((y) => y >= 2000, 'Send a four-digit year such as 2030, or two digits such as 30.'),
      cvc: z.string({ error: 'Send the 3 or 4 digit security code as a string, e.g. "123".' }).regex(/^\d{3,4}$/, 'Send the 3 or 4 digits printed on the card.'),
    },
    { error: 'Send an object with number, exp_month, exp_year and cvc.' },
  )
  .strict();

export const confirmSchema = z
  .object(
    {
      payment_method: z.discriminatedUnion(
        'type',
        [
          z.object({ type: z.literal('card'), card }).strict(),
          z.object({ type: z.literal('wallet') }).strict(),
        ],
        { error: 'Send {"type": "card", "card": {...}} or {"type": "wallet"}.' },
      ),
    },
    { error: 'Send a JSON object with payment_method.' },
  )
  .strict();
export type ConfirmInput = z.output<typeof confirmSchema>;

/** parseInput describes everything under payment_method by its type: the card number and CVC are never echoed. */
export const parseConfirm = (body: unknown): ConfirmInput => parseInput(confirmSchema, body);

export const captureSchema = z.object({ amount: amount.optional() }, { error: 'Send a JSON object, e.g. {} or {"amount": 500}.' }).strict();

export const refundSchema = z
  .object(
    {
      order_id: z.string({ error: 'Send the id of a succeeded order, e.g. "ord_...".' }).regex(/^ord_[A-Za-z0-9]{1,64}$/, 'Order ids look like "ord_" followed by letters and digits.'),
      amount: amount.optional(),
      reason: z.enum(REFUND_REASONS, { error: `Use one of: ${REFUND_REASONS.join(', ')}.` }).optional(),
    },
    { error: 'Send a JSON object with order_id, and optionally amount and reason.' },
  )
  .strict();

export const refundIdSchema = z.string().regex(/^re_[A-Za-z0-9]{1,64}$/);
export const orderIdSchema = z.string().regex(/^ord_[A-Za-z0-9]{1,64}$/);
