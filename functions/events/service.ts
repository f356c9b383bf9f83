import { NotFoundError } from '../commons/errors';
import { parseInput } from '../http/validation';
import type { Caller } from '../orders/service';
import { eventIdSchema, listEventsSchema } from '../webhooks/schemas';
import { deliveriesOf, getEvent, listEvents } from './repository';

/** The events API (docs/webhooks.md): the caller's events, and for one of them every delivery and attempt. */
export class EventService {
  constructor(private readonly table: string) {}

  async list(caller: Caller, query: unknown) {
    const input = parseInput(listEventsSchema, query);
    const page = await listEvents(this.table, caller.merchantId, {
      limit: input.limit,
      startingAfter: input.starting_after,
      type: input.type,
      createdGte: input['created[gte]'],
      createdLt: input['created[lt]'],
    });
    return { object: 'list' as const, url: '/v1/events', has_more: page.hasMore, data: page.events };
  }

  async get(caller: Caller, id: string) {
    const event = eventIdSchema.safeParse(id).success ? await getEvent(this.table, caller.merchantId, id) : undefined;
    if (!event) throw new NotFoundError('event', id);
    // Read only now: the event was found in the caller's own partition, so its deliveries are the caller's.
    const { deliveries, attempts } = await deliveriesOf(this.table, event.id);
    return { ...event, deliveries, delivery_attempts: attempts };
  }
}
