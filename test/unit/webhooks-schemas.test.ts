import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../functions/commons/errors';
import { EVENT_TYPES } from '../../functions/events/event';
import { parseInput } from '../../functions/http/validation';
import { ROUTE_SCOPES, requireScope } from '../../functions/merchants/scopes';
import { newSigningSecret } from '../../functions/webhooks/endpoints';
import {
  createEndpointSchema,
  DEFAULT_ROLL_EXPIRES_IN,
  listEventsSchema,
  rollSecretSchema,
  updateEndpointSchema,
} from '../../functions/webhooks/schemas';

/** Issue 9 §4: what the webhook endpoints and events APIs accept, and what their refusals say. */

const deployed = createEndpointSchema(false); // a stage in AWS: its base URL is https://…execute-api…
const localCloud = createEndpointSchema(false, true);

function refusal(schema: Parameters<typeof parseInput>[0], body: unknown): InvalidRequestError {
  try {
    parseInput(schema, body);
  } catch (error) {
    if (error instanceof InvalidRequestError) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(body)} to be refused`);
}

describe('POST /v1/webhook_endpoints', () => {
  it('accepts an https URL with a list of types, or ["*"]', () => {
    expect(parseInput(deployed, { url: 'https://shop.example/hooks', enabled_events: ['order.succeeded', 'refund.succeeded'] })).toEqual({
      url: 'https://shop.example/hooks',
      enabled_events: ['order.succeeded', 'refund.succeeded'],
    });
    expect(parseInput(deployed, { url: 'https://shop.example/hooks', enabled_events: ['*'], description: 'Shop' }).enabled_events).toEqual(['*']);
  });

  it('refuses an unknown event type, naming the field, the value and every valid type', () => {
    const error = refusal(deployed, { url: 'https://shop.example/hooks', enabled_events: ['order.succeeded', 'order.paid'] });
    expect(error.param).toBe('enabled_events.1');
    expect(error.message).toContain('"order.paid"');
    for (const type of EVENT_TYPES) expect(error.message).toContain(type);
  });

  it.each([
    [[], 'at least one'],
    [['*', 'order.created'], '"*" alone'],
    [['order.created', 'order.created'], 'once'],
    ['*', 'array'],
  ])('refuses enabled_events %j', (enabled_events, fix) => {
    const error = refusal(deployed, { url: 'https://shop.example/hooks', enabled_events });
    expect(error.param).toBe('enabled_events');
    expect(error.message).toContain(fix);
  });

  it('requires url and enabled_events, and refuses unknown fields', () => {
    expect(refusal(deployed, { enabled_events: ['*'] })).toMatchObject({ code: 'parameter_missing', param: 'url' });
    expect(refusal(deployed, { url: 'https://shop.example/hooks' })).toMatchObject({ code: 'parameter_missing', param: 'enabled_events' });
    expect(refusal(deployed, { url: 'https://shop.example/hooks', enabled_events: ['*'], secret: 'whsec_x' })).toMatchObject({ code: 'parameter_unknown', param: 'secret' });
  });

  it('deployed stages: https only, never loopback', () => {
    expect(refusal(deployed, { url: 'http://shop.example/hooks', enabled_events: ['*'] }).message).toContain('Use an https:// URL');
    expect(refusal(deployed, { url: 'http://127.0.0.1:4000/hooks', enabled_events: ['*'] }).param).toBe('url');
    expect(refusal(deployed, { url: 'https://localhost/hooks', enabled_events: ['*'] }).message).toContain('loopback');
  });

  it('the local cloud: also http://localhost and http://127.0.0.1, so a receiver on this machine can be registered', () => {
    for (const url of ['http://localhost:4000/hooks', 'http://127.0.0.1:4000/hooks']) {
      expect(parseInput(localCloud, { url, enabled_events: ['*'] }).url).toBe(url);
    }
    expect(refusal(localCloud, { url: 'http://shop.example/hooks', enabled_events: ['*'] }).message).toContain('loopback');
  });

  it.each(['https://10.0.0.1/hooks', 'https://169.254.169.254/latest/meta-data/', 'https://[fe80::1]/', 'https://192.168.1.10/', 'https://[::1]/'])(
    'refuses the non-public literal address %s everywhere',
    (url) => {
      for (const schema of [deployed, localCloud]) {
        if (schema === localCloud && url === 'https://[::1]/') continue; // loopback is the local cloud's exception
        const error = refusal(schema, { url, enabled_events: ['*'] });
        expect(error.param).toBe('url');
        expect(error.message).toMatch(/private|link-local|loopback/);
      }
    },
  );

  it('refuses credentials and card numbers in the URL (it is stored and shown as sent)', () => {
    expect(refusal(deployed, { url: 'https://user:pass@shop.example/hooks', enabled_events: ['*'] }).message).toContain('user name and password');
    const withPan = refusal(deployed, { url: 'https://shop.example/hooks/4242424242424242', enabled_events: ['*'] });
    expect(withPan.message).toContain('card number');
    expect(withPan.message).not.toContain('4242424242424242');
  });
});

describe('POST /v1/webhook_endpoints/{id}', () => {
  const update = updateEndpointSchema(false);
  it('every field is optional; disabled is a boolean', () => {
    expect(parseInput(update, {})).toEqual({});
    expect(parseInput(update, { disabled: false })).toEqual({ disabled: false });
    expect(refusal(update, { disabled: 'no' })).toMatchObject({ param: 'disabled' });
    expect(refusal(update, { enabled_events: ['nope'] })).toMatchObject({ param: 'enabled_events.0' });
  });
});

describe('POST /v1/webhook_endpoints/{id}/roll_secret', () => {
  it('expires_in: 24 h by default, 0 to 7 days', () => {
    expect(parseInput(rollSecretSchema, {})).toEqual({ expires_in: DEFAULT_ROLL_EXPIRES_IN });
    expect(DEFAULT_ROLL_EXPIRES_IN).toBe(86_400);
    expect(parseInput(rollSecretSchema, { expires_in: 0 })).toEqual({ expires_in: 0 });
    expect(refusal(rollSecretSchema, { expires_in: 7 * 86_400 + 1 })).toMatchObject({ param: 'expires_in' });
    expect(refusal(rollSecretSchema, { expires_in: 1.5 })).toMatchObject({ param: 'expires_in' });
    expect(refusal(rollSecretSchema, { expires_in: -1 })).toMatchObject({ param: 'expires_in' });
  });
});

describe('GET /v1/events', () => {
  it('limit 1-100 (10 by default), one type, created ranges in unix seconds or ISO', () => {
    expect(parseInput(listEventsSchema, {})).toEqual({ limit: 10 });
    const parsed = parseInput(listEventsSchema, { limit: '100', type: 'order.succeeded', 'created[gte]': '1767225600', 'created[lt]': '2026-01-02T00:00:00Z' });
    expect(parsed).toMatchObject({ limit: 100, type: 'order.succeeded' });
    expect(parsed['created[gte]']).toEqual(new Date('2026-01-01T00:00:00Z'));
    expect(parsed['created[lt]']).toEqual(new Date('2026-01-02T00:00:00Z'));
    expect(refusal(listEventsSchema, { limit: '101' })).toMatchObject({ param: 'limit' });
    expect(refusal(listEventsSchema, { type: 'order.paid' }).message).toContain('order.succeeded');
    expect(refusal(listEventsSchema, { starting_after: 'ord_1' })).toMatchObject({ param: 'starting_after' });
  });
});

describe('signing secrets', () => {
  it('whsec_ + base64 of 32 random bytes, different every time, and redacted when printed', () => {
    const a = newSigningSecret();
    const b = newSigningSecret();
    expect(a.reveal()).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(a.reveal().slice('whsec_'.length), 'base64')).toHaveLength(32);
    expect(a.reveal()).not.toBe(b.reveal());
    expect(JSON.stringify({ a })).not.toContain('whsec_');
    expect(`${a}`).not.toContain('whsec_');
  });
});

describe('scopes', () => {
  it('restricted keys: webhook_endpoints:read reads, :write also writes; events:read lists and reads events', () => {
    expect(ROUTE_SCOPES['POST /v1/webhook_endpoints/{id}/roll_secret']).toBe('webhook_endpoints:write');
    expect(() => requireScope('webhook_endpoints:read', 'GET', '/v1/webhook_endpoints')).not.toThrow();
    expect(() => requireScope('webhook_endpoints:write', 'GET', '/v1/webhook_endpoints/{id}')).not.toThrow();
    expect(() => requireScope('webhook_endpoints:read', 'POST', '/v1/webhook_endpoints')).toThrow(/webhook_endpoints:write/);
    expect(() => requireScope('events:read', 'GET', '/v1/events/{id}')).not.toThrow();
    expect(() => requireScope('orders:write', 'GET', '/v1/events')).toThrow(/events:read/);
  });
});
