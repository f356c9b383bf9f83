import * as z from 'zod';
import { containsCardNumber } from '../channels/card-numbers';
import { EVENT_TYPES } from '../events/event';
import { callbackUrl, instant, pageLimit as limit } from '../orders/schemas';

/** Request schemas of the webhook endpoints and events APIs. Each message says how to fix the value; `parseInput` adds the field and the value. */

export const MAX_ROLL_EXPIRES_IN = 7 * 24 * 3600;
export const DEFAULT_ROLL_EXPIRES_IN = 24 * 3600;

const typeList = `${EVENT_TYPES.join(', ')}`;

/**
 * Where deliveries go: the rules of an order's notify_url (https, a public host; http to loopback only in the
 * local cloud), and no user name, password or card number in it. The URL is stored and shown as sent, so
 * credentials in it would sit in plaintext: deliveries are authenticated by their signature instead.
 */
const webhookUrl = (livemode: boolean, loopbackAllowed: boolean) =>
  callbackUrl(livemode, loopbackAllowed)
    .refine((value) => {
      try {
        const url = new URL(value);
        return url.username === '' && url.password === '';
      } catch {
        return true; // callbackUrl has said what is wrong already
      }
    }, 'Remove the user name and password from the URL: it is stored and shown as sent. Verify the webhook-signature header instead (docs/webhooks.md).')
    .refine((value) => !containsCardNumber(value), 'It holds what looks like a card number, which this field must never store. Use a URL without it.');

const eventType = z.enum(EVENT_TYPES, { error: `Use one of: ${typeList}.` });

const enabledEvents = z
  .array(
    z.union([z.literal('*'), eventType], { error: `Use one of: ${typeList}; or "*" alone for every type.` }),
    { error: `Send an array of event types, e.g. ["order.succeeded", "refund.succeeded"], or ["*"] for every type.` },
  )
  .min(1, 'Send at least one event type, or ["*"] for every type.')
  .max(EVENT_TYPES.length, `Send at most ${EVENT_TYPES.length} event types (each once), or ["*"] for every type.`)
  .refine((types) => !types.includes('*') || types.length === 1, 'Send "*" alone: ["*"] already subscribes to every type.')
  .refine((types) => new Set(types).size === types.length, 'Send each event type once.');

const description = z
  .string({ error: 'Send a string.' })
  .max(500, 'Use at most 500 characters.')
  .refine((text) => !containsCardNumber(text), 'It holds what looks like a card number, which this field must never store. Remove it.');

/** `loopbackUrls`: the stage is served on loopback (the local cloud), so endpoints on this machine can be called. */
export function createEndpointSchema(livemode: boolean, loopbackUrls = false) {
  return z
    .object(
      {
        url: webhookUrl(livemode, loopbackUrls),
        enabled_events: enabledEvents,
        description: description.optional(),
      },
      { error: 'Send a JSON object.' },
    )
    .strict();
}

export function updateEndpointSchema(livemode: boolean, loopbackUrls = false) {
  return z
    .object(
      {
        url: webhookUrl(livemode, loopbackUrls).optional(),
        enabled_events: enabledEvents.optional(),
        description: description.optional(),
        disabled: z.boolean({ error: 'Send true (stop deliveries) or false (resume them).' }).optional(),
      },
      { error: 'Send a JSON object.' },
    )
    .strict();
}

export const rollSecretSchema = z
  .object(
    {
      expires_in: z
        .number({ error: `Send an integer number of seconds between 0 and ${MAX_ROLL_EXPIRES_IN}.` })
        .int(`Send an integer number of seconds between 0 and ${MAX_ROLL_EXPIRES_IN}.`)
        .min(0, 'Send 0 (the current secret stops signing at once) or more seconds.')
        .max(MAX_ROLL_EXPIRES_IN, `Send at most ${MAX_ROLL_EXPIRES_IN} seconds (7 days).`)
        .default(DEFAULT_ROLL_EXPIRES_IN),
    },
    { error: 'Send a JSON object.' },
  )
  .strict();

export const endpointIdSchema = z.string().regex(/^we_[A-Za-z0-9]{1,64}$/, 'Webhook endpoint ids look like "we_" followed by letters and digits.');
export const eventIdSchema = z.string().regex(/^evt_[A-Za-z0-9]{1,64}$/, 'Event ids look like "evt_" followed by letters and digits.');

export const listEndpointsSchema = z
  .object({
    limit,
    starting_after: z.string().regex(/^we_[A-Za-z0-9]{1,64}$/, 'Send the id of an endpoint from the previous page, e.g. "we_...".').optional(),
  })
  .strict();

export const listEventsSchema = z
  .object({
    limit,
    starting_after: z.string().regex(/^evt_[A-Za-z0-9]{1,64}$/, 'Send the id of an event from the previous page, e.g. "evt_...".').optional(),
    type: eventType.optional(),
    'created[gte]': instant.optional(),
    'created[lt]': instant.optional(),
  })
  .strict();

export type ListEventsInput = z.output<typeof listEventsSchema>;
