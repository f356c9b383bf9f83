import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { chainOf, entryKey } from '../../functions/audit/chain';
import { call, cloud, payplane } from './support';

/** The table as someone with write access to it (not a function, not the operator) sees it. */
function admin(): DynamoDBDocumentClient {
  const c = cloud();
  return DynamoDBDocumentClient.from(new DynamoDBClient({ region: c.region, endpoint: c.endpoints.dynamodb, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }));
}

/**
 * Issue 11 §4 over HTTP through the local cloud: a merchant reads its own audit trail at GET /v1/audit_events (its
 * key's changes with the key id, the operator's as "Payplane operator"), never another merchant's, and the operator
 * verifies the chains with `payplane audit verify`.
 */

/** A merchant made by the operator CLI (an operator change: merchant.created), with its key and key id. */
async function operatorMerchant(name: string): Promise<{ id: string; key: string; keyId: string }> {
  const { code, stdout, stderr } = await payplane('merchants', 'create', '--name', name, '--json');
  expect(code, stderr).toBe(0);
  const created = JSON.parse(stdout);
  return { id: created.id, key: created.secret_key, keyId: created.key_id };
}

describe('GET /v1/audit_events', () => {
  it('shows a webhook endpoint created with the key id that made it, and the operator as "Payplane operator"', async () => {
    // Prepare
    const m = await operatorMerchant('Audit reader');
    // Act
    const created = await call('POST', '/v1/webhook_endpoints', { key: m.key, body: { url: 'https://shop.example/hooks', enabled_events: ['*'] } });
    const listed = await call('GET', '/v1/audit_events', { key: m.key });
    // Assess
    expect(created.status, created.text).toBe(201);
    expect(listed.status, listed.text).toBe(200);
    expect(listed.body).toMatchObject({ object: 'list', url: '/v1/audit_events', has_more: false });
    const [newest, first] = listed.body.data;
    expect(newest).toMatchObject({
      object: 'audit_event',
      seq: 2,
      action: 'webhook_endpoint.created',
      actor: { type: 'merchant_key', key_id: m.keyId },
      target: { type: 'webhook_endpoint', id: created.body.id },
      request_id: created.headers.get('request-id'),
      after: { url: 'https://shop.example/hooks', enabled_events: ['*'], disabled: false },
    });
    expect(first).toMatchObject({ seq: 1, action: 'merchant.created', actor: { type: 'operator', name: 'Payplane operator' } });
    expect(newest.prev_hash).toBe(first.hash);
    expect(listed.text).not.toContain('whsec_');
    expect(listed.text).not.toContain('local-operator');
    // Filtered by action.
    const fees = await call('GET', '/v1/audit_events?action=merchant.fees_set', { key: m.key });
    expect(fees.body.data).toEqual([]);
  });

  it('a merchant never sees another merchant\'s entries; a restricted key needs audit_events:read', async () => {
    // Prepare
    const a = await operatorMerchant('Audit A');
    const b = await operatorMerchant('Audit B');
    await call('POST', '/v1/webhook_endpoints', { key: a.key, body: { url: 'https://a.example/hooks', enabled_events: ['*'] } });
    // Act
    const seenByB = await call('GET', '/v1/audit_events?limit=100', { key: b.key });
    // Assess
    expect(seenByB.status).toBe(200);
    expect(seenByB.body.data.map((e: { merchant_id: string }) => e.merchant_id)).toEqual([b.id]);
    expect(seenByB.text).not.toContain(a.id);
    // A restricted key: refused without the scope, served with it.
    const without = await payplane('keys', 'create', '--merchant', b.id, '--scope', 'orders:read', '--json');
    const withScope = await payplane('keys', 'create', '--merchant', b.id, '--scope', 'audit_events:read', '--json');
    const refused = await call('GET', '/v1/audit_events', { key: JSON.parse(without.stdout).restricted_key });
    const served = await call('GET', '/v1/audit_events', { key: JSON.parse(withScope.stdout).restricted_key });
    expect(refused.status).toBe(403);
    expect(served.status).toBe(200);
    expect(served.body.data.map((e: { action: string }) => e.action)).toEqual(['api_key.created', 'api_key.created', 'merchant.created']);
  });
});

describe('payplane audit verify', () => {
  it('recomputes a merchant\'s chain and every chain, and says OK with the counts', async () => {
    const m = await operatorMerchant('Audit verify');
    await call('POST', '/v1/webhook_endpoints', { key: m.key, body: { url: 'https://v.example/hooks', enabled_events: ['*'] } });
    const one = await payplane('audit', 'verify', '--merchant', m.id);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toContain(`OK      merchant:${m.id}: 2 entries`);
    // Every chain: other files of this tier tamper with chains of their own on purpose, so only these two are held to OK.
    const all = await payplane('audit', 'verify', '--json');
    const verdicts: { chain: string; ok: boolean }[] = JSON.parse(all.stdout).chains;
    expect(verdicts.filter((v) => v.chain === 'platform' || v.chain === `merchant:${m.id}`)).toEqual([
      expect.objectContaining({ chain: 'platform', ok: true }),
      expect.objectContaining({ chain: `merchant:${m.id}`, ok: true }),
    ]);
  });

  it('names the edited entry, then the deleted one, and exits 1', async () => {
    // Prepare: a chain of 4 (created, 3 fee sets)
    const m = await operatorMerchant('Audit tampered');
    for (const bps of [100, 200, 300]) expect((await payplane('merchants', 'fees', 'set', '--merchant', m.id, '--fees', `{"card":{"percent_bps":${bps}}}`)).code).toBe(0);
    const listed = await call('GET', '/v1/audit_events', { key: m.key });
    const id = (seq: number) => listed.body.data.find((e: { seq: number }) => e.seq === seq).id;
    const table = cloud().tables.main!;
    // Act: the fee entry seq 3 is lowered in the table
    await admin().send(new UpdateCommand({ TableName: table, Key: entryKey(chainOf(m.id), 3), UpdateExpression: 'SET request_id = :r', ExpressionAttributeValues: { ':r': 'forged' } }));
    const edited = await payplane('audit', 'verify', '--merchant', m.id);
    // Act: entry seq 2 is deleted
    await admin().send(new DeleteCommand({ TableName: table, Key: entryKey(chainOf(m.id), 2) }));
    const deleted = await payplane('audit', 'verify', '--merchant', m.id);
    // Assess
    expect(edited.code).toBe(1);
    expect(edited.stdout).toContain(`BROKEN  merchant:${m.id} at seq 3 (${id(3)}): hash_mismatch`);
    expect(deleted.code).toBe(1);
    expect(deleted.stdout).toContain(`BROKEN  merchant:${m.id} at seq 2: seq_gap`);
  });

  it('reports a cut tail against the last signed heads, which the daily schedule signed', async () => {
    // Prepare: a chain of 3 (created, 2 fee sets), then the heads signed as the schedule signs them
    const m = await operatorMerchant('Audit tail');
    for (const bps of [110, 220]) expect((await payplane('merchants', 'fees', 'set', '--merchant', m.id, '--fees', `{"card":{"percent_bps":${bps}}}`)).code).toBe(0);
    const c = cloud();
    const { rules } = (await (await fetch(`${c.endpoints.admin}/__schedules`)).json()) as { rules: { logicalId: string }[] };
    const schedule = rules.find((r) => r.logicalId.startsWith('AuditHeadsSchedule'))!;
    expect((await fetch(`${c.endpoints.admin}/__schedules/${schedule.logicalId}/trigger`, { method: 'POST' })).status).toBe(200);
    const before = await payplane('audit', 'verify', '--merchant', m.id);
    expect(before.code, before.stdout + before.stderr).toBe(0);
    expect(before.stdout).toContain('Checked against the signed heads of');
    // Act: the last entry is cut off and the head rolled back to seq 2: a chain that is consistent in itself
    const second = (await admin().send(new GetCommand({ TableName: c.tables.main!, Key: entryKey(chainOf(m.id), 2) }))).Item!;
    await admin().send(new DeleteCommand({ TableName: c.tables.main!, Key: entryKey(chainOf(m.id), 3) }));
    await admin().send(
      new UpdateCommand({ TableName: c.tables.main!, Key: { pk: `AUDIT#${chainOf(m.id)}`, sk: 'HEAD' }, UpdateExpression: 'SET seq = :s, #h = :h', ExpressionAttributeNames: { '#h': 'hash' }, ExpressionAttributeValues: { ':s': 2, ':h': second.hash } }),
    );
    const cut = await payplane('audit', 'verify', '--merchant', m.id);
    // Assess
    expect(cut.code).toBe(1);
    expect(cut.stdout).toContain(`BROKEN  merchant:${m.id} at seq 3`);
    expect(cut.stdout).toContain('signed_head_mismatch');
  });
});
