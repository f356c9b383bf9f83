import * as z from 'zod';
import { dynamo } from '../commons/clients';
import { required } from '../commons/config';
import { parseInput } from '../http/validation';
import { pageLimit } from '../orders/schemas';
import { AUDIT_EVENT_ID, chainOf, seqOfId, type StoredEntry } from './chain';
import { AUDIT_ACTIONS, type Actor } from './context';
import { listEntries } from './read';

/** `GET /v1/audit_events`: the caller's own chain, newest first (docs/audit.md § Reading). */
export const listAuditEventsSchema = z
  .object({
    limit: pageLimit,
    starting_after: z.string().regex(AUDIT_EVENT_ID, 'Send the id of an audit event from the previous page, e.g. "aud_000000000012…".').optional(),
    action: z.enum(AUDIT_ACTIONS, { error: `Use one of: ${AUDIT_ACTIONS.join(', ')}.` }).optional(),
  })
  .strict();

/** What a merchant sees of an actor: an operator is "Payplane operator", never the IAM principal. */
export type ShownActor = Exclude<Actor, { type: 'operator' }> | { type: 'operator'; name: 'Payplane operator' };

export const showActor = (actor: Actor): ShownActor => (actor.type === 'operator' ? { type: 'operator', name: 'Payplane operator' } : actor);

export const auditEventToApi = (entry: StoredEntry) => ({ ...entry, actor: showActor(entry.actor) });

export async function listAuditEvents(caller: { merchantId: string }, query: unknown, deps = { db: dynamo(), tableName: required('TABLE_NAME') }) {
  const input = parseInput(listAuditEventsSchema, query);
  const page = await listEntries(deps, chainOf(caller.merchantId), {
    limit: input.limit,
    startingAfter: input.starting_after === undefined ? undefined : seqOfId(input.starting_after),
    action: input.action,
  });
  return { object: 'list' as const, url: '/v1/audit_events', has_more: page.hasMore, data: page.entries.map(auditEventToApi) };
}
