import { isLoopbackUrl } from '../commons/addresses';
import { NotFoundError } from '../commons/errors';
import { newId } from '../commons/ids';
import type { Secret } from '../commons/secret';
import { parseInput } from '../http/validation';
import type { AuditContext } from '../audit/context';
import type { Caller } from '../orders/service';
import {
  createEndpoint,
  deleteEndpoint,
  getEndpoint,
  listEndpoints,
  rollSecret,
  updateEndpoint,
  type WebhookEndpoint,
} from './endpoints';
import { createEndpointSchema, endpointIdSchema, listEndpointsSchema, rollSecretSchema, updateEndpointSchema } from './schemas';

/**
 * The webhook endpoints API (docs/webhooks.md). Each operation: validate → load → persist (endpoints.ts) → shape.
 * The secret leaves only in the answer of the create and of a roll (`secret`), never in a read.
 */
export interface ApiWebhookEndpoint {
  id: string;
  object: 'webhook_endpoint';
  url: string;
  enabled_events: string[];
  description: string | null;
  disabled: boolean;
  disabled_reason: string | null;
  /** While a rolled-away secret still signs: until when. */
  previous_secret_expires_at: string | null;
  livemode: false;
  created_at: string;
  updated_at: string;
  /** Only when created or rolled. */
  secret?: string;
}

const livemode = false;

/** A caller that changes an endpoint: the audit trail records `by` (ApiRequest.by: the API key and the request id). */
export type AuditedCaller = Caller & { by: AuditContext };

export class WebhookEndpointService {
  constructor(private readonly table: string) {}

  async create(caller: AuditedCaller, body: unknown): Promise<ApiWebhookEndpoint> {
    // The stage's own base URL (configuration) decides: only a stage served on loopback calls loopback URLs.
    const input = parseInput(createEndpointSchema(livemode, isLoopbackUrl(caller.baseUrl)), body);
    const { endpoint, secret } = await createEndpoint(
      this.table,
      {
        id: caller.newId?.('we') ?? newId('we'),
        merchantId: caller.merchantId,
        url: input.url,
        enabledEvents: input.enabled_events,
        description: input.description,
      },
      caller.now,
      caller.by,
    );
    return endpointToApi(endpoint, caller.now, secret);
  }

  async list(caller: Caller, query: unknown) {
    const input = parseInput(listEndpointsSchema, query);
    const after = input.starting_after ? await this.load(caller, input.starting_after, 'starting_after') : undefined;
    const page = await listEndpoints(this.table, caller.merchantId, { limit: input.limit, after });
    return {
      object: 'list' as const,
      url: '/v1/webhook_endpoints',
      has_more: page.hasMore,
      data: page.endpoints.map((e) => endpointToApi(e, caller.now)),
    };
  }

  async get(caller: Caller, id: string): Promise<ApiWebhookEndpoint> {
    return endpointToApi(await this.load(caller, id), caller.now);
  }

  async update(caller: AuditedCaller, id: string, body: unknown): Promise<ApiWebhookEndpoint> {
    const input = parseInput(updateEndpointSchema(livemode, isLoopbackUrl(caller.baseUrl)), body);
    const updated = validId(id) ? await updateEndpoint(this.table, caller.merchantId, id, input, caller.now, caller.by) : undefined;
    if (!updated) throw new NotFoundError('webhook endpoint', id);
    return endpointToApi(updated, caller.now);
  }

  async delete(caller: AuditedCaller, id: string) {
    if (!validId(id) || !(await deleteEndpoint(this.table, caller.merchantId, id, caller.by))) throw new NotFoundError('webhook endpoint', id);
    return { id, object: 'webhook_endpoint' as const, deleted: true as const };
  }

  async rollSecret(caller: AuditedCaller, id: string, body: unknown): Promise<ApiWebhookEndpoint> {
    const input = parseInput(rollSecretSchema, body);
    const rollId = caller.newId?.('roll') ?? newId('roll');
    const rolled = validId(id) ? await rollSecret(this.table, caller.merchantId, id, input.expires_in, caller.now, rollId, caller.by) : undefined;
    if (!rolled) throw new NotFoundError('webhook endpoint', id);
    return endpointToApi(rolled.endpoint, caller.now, rolled.secret);
  }

  private async load(caller: Caller, id: string, param = 'id'): Promise<WebhookEndpoint> {
    const endpoint = validId(id) ? await getEndpoint(this.table, caller.merchantId, id) : undefined;
    if (!endpoint) throw new NotFoundError('webhook endpoint', id, param);
    return endpoint;
  }
}

const validId = (id: string) => endpointIdSchema.safeParse(id).success;

/** The API shape: everything but the sealed secrets and the deliverer's breaker state; `secret` only when given. */
export function endpointToApi(e: WebhookEndpoint, now: Date, secret?: Secret<string>): ApiWebhookEndpoint {
  const previous = e.secrets.find((s) => s.expires_at && Date.parse(s.expires_at) > now.getTime());
  return {
    id: e.id,
    object: 'webhook_endpoint',
    url: e.url,
    enabled_events: e.enabled_events,
    description: e.description ?? null,
    disabled: e.disabled,
    disabled_reason: e.disabled_reason ?? null,
    previous_secret_expires_at: previous?.expires_at ?? null,
    livemode: false,
    created_at: e.created_at,
    updated_at: e.updated_at,
    // The one place the plaintext is revealed: the response that shows it once.
    ...(secret ? { secret: secret.reveal() } : {}),
  };
}
