import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { EVENT_TYPES, type PlatformEvent } from '../functions/events/event';
import { InvalidRequestError } from '../functions/commons/errors';
import { apiCall, MerchantApiError, type MerchantApi } from './merchant-api';

/**
 * `payplane trigger <type>`: makes the objects that cause the event, through the public API, with the sandbox's
 * test cards (functions/channels/sandbox/test-cards.ts), then finds the event it caused.
 */
const CARDS = { success: '4242424242424242', declined: '4000000000000002', threeDs: '4000000000003220' } as const;

interface Order {
  id: string;
  status: string;
}
interface Refund {
  id: string;
  status: string;
}

type Step = (api: MerchantApi) => Promise<{ order: Order; refund?: Refund; caused: 'order' | 'refund' }>;

const createOrder = async (api: MerchantApi, over: Record<string, unknown> = {}) =>
  (
    await apiCall<Order>(api, 'POST', '/v1/orders', {
      body: { merchant_order_no: `trigger_${randomUUID().slice(0, 18)}`, amount: 2000, currency: 'USD', description: 'payplane trigger', ...over },
    })
  ).body;

const confirm = async (api: MerchantApi, order: Order, number: string) =>
  (await apiCall<Order>(api, 'POST', `/v1/orders/${order.id}/confirm`, { body: { payment_method: { type: 'card', card: { number, exp_month: 12, exp_year: new Date().getUTCFullYear() + 5, cvc: '123' } } } })).body;

const paid = async (api: MerchantApi) => confirm(api, await createOrder(api), CARDS.success);

const refunded: Step = async (api) => {
  const order = await paid(api);
  const refund = (await apiCall<Refund>(api, 'POST', '/v1/refunds', { body: { order_id: order.id, reason: 'requested_by_customer' } })).body;
  return { order, refund, caused: 'refund' };
};

export const TRIGGERS: Partial<Record<(typeof EVENT_TYPES)[number], Step>> = {
  'order.created': async (api) => ({ order: await createOrder(api), caused: 'order' }),
  'order.processing': async (api) => ({ order: await paid(api), caused: 'order' }),
  'order.requires_action': async (api) => ({ order: await confirm(api, await createOrder(api), CARDS.threeDs), caused: 'order' }),
  'order.requires_capture': async (api) => ({ order: await confirm(api, await createOrder(api, { capture_method: 'manual' }), CARDS.success), caused: 'order' }),
  'order.succeeded': async (api) => ({ order: await paid(api), caused: 'order' }),
  'order.payment_failed': async (api) => {
    const order = await createOrder(api);
    try {
      await confirm(api, order, CARDS.declined);
    } catch (error) {
      // The decline is the point: the API answers 402 card_error, and the order is back in requires_payment.
      if (!(error instanceof MerchantApiError && error.status === 402)) throw error;
    }
    return { order: (await apiCall<Order>(api, 'GET', `/v1/orders/${order.id}`)).body, caused: 'order' };
  },
  'order.refunded': async (api) => ({ ...(await refunded(api)), caused: 'order' }),
  'order.closed': async (api) => {
    const order = await createOrder(api);
    return { order: (await apiCall<Order>(api, 'POST', `/v1/orders/${order.id}/close`)).body, caused: 'order' };
  },
  'refund.created': refunded,
  'refund.succeeded': refunded,
};

/** Why the other types cannot be triggered through the merchant API, and what causes them instead. */
const NOT_TRIGGERABLE: Record<string, string> = {
  'refund.failed': 'the sandbox channel refunds every refund the API accepts (no test card makes it refuse one), so no API call causes it. Its payload is in docs/events.md.',
  'settlement.created': "settlements are made by the operator's settlement run, not by a merchant's API call: run payplane settlements run (local cloud).",
  'settlement.paid': "settlements are paid by the operator's settlement run, not by a merchant's API call: run payplane settlements run (local cloud).",
  'settlement.failed': "a payout fails in the operator's settlement run, not by a merchant's API call.",
};

export interface Triggered {
  type: string;
  order: Order;
  refund: Refund | null;
  /** The event it caused, once listed by GET /v1/events. */
  event: PlatformEvent;
}

export function triggerStep(type: string): Step {
  const step = TRIGGERS[type as keyof typeof TRIGGERS];
  if (step) return step;
  const why = NOT_TRIGGERABLE[type];
  throw new InvalidRequestError(
    'cli_usage',
    why ? `'${type}' cannot be triggered: ${why} Triggerable: ${Object.keys(TRIGGERS).join(', ')}.` : `Unknown event type '${type}'. Use one of: ${Object.keys(TRIGGERS).join(', ')}, e.g. payplane trigger order.succeeded.`,
  );
}

export async function trigger(api: MerchantApi, type: string): Promise<Triggered> {
  const step = triggerStep(type);
  const { order, refund, caused } = await step(api);
  const objectId = caused === 'refund' ? refund!.id : order.id;
  // Events commit with their change, so the event is there by now; a few polls cover a slower stage.
  for (let attempt = 0; attempt < 20; attempt++) {
    const page = await apiCall<{ data: PlatformEvent[] }>(api, 'GET', '/v1/events', { query: { type, limit: 100 } });
    const event = page.body.data.find((e) => e.data.object.id === objectId);
    if (event) return { type, order, refund: refund ?? null, event };
    await sleep(250);
  }
  throw new Error(`Made ${objectId}, but no ${type} event of it is listed by GET /v1/events after 5 s. Look with: payplane events list --type ${type}`);
}
