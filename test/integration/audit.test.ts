import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DeleteCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAuditEvents } from '../../functions/audit/api';
import { commitAudited } from '../../functions/audit/append';
import { auditPk, chainOf, entryKey, hashEntry, headKey, PLATFORM_CHAIN, type StoredEntry } from '../../functions/audit/chain';
import { AUDIT_ACTIONS, type AuditAction, type AuditContext } from '../../functions/audit/context';
import { listChains, verifyChain } from '../../functions/audit/verify';
import { dynamo } from '../../functions/commons/clients';
import { seal } from '../../functions/commons/crypto';
import { newId } from '../../functions/commons/ids';
import { setRate } from '../../functions/fx';
import {
  createMerchant,
  createRestrictedKey,
  revokeKey,
  rollKey,
  setMerchantFees,
  setPayoutSettings,
  setRateLimits,
  setReceipts,
  type MerchantDeps,
} from '../../functions/merchants/service';
import * as tasks from '../../functions/settlements/tasks';
import { WebhookEndpointService, type AuditedCaller } from '../../functions/webhooks/service';
import { UsagePlans } from '../../local/apigateway-usage';
import { ControlPlane } from '../../local/control-plane';
import { useLocalServices } from './env';

/**
 * Issue 11 §4: the tamper-evident audit trail against DynamoDB Local. Every configuration change appends an entry in
 * its own transaction; verify recomputes a chain and names exactly the entry that was edited or deleted; concurrent
 * changes of one merchant make one linear chain; nothing secret is ever written into it.
 */

let table: string;
let deps: MerchantDeps;
let control: ControlPlane | undefined;
const operator: AuditContext = { actor: { type: 'operator', principal: 'arn:aws:iam::000000000000:user/alice' }, requestId: 'req-operator' };
const keyActor = (keyId: string, requestId = `req-${newId('x')}`): AuditContext => ({ actor: { type: 'merchant_key', key_id: keyId }, requestId });
const read = () => ({ db: dynamo(), tableName: table });

beforeAll(() => {
  table = useLocalServices().tables.main;
  deps = { db: dynamo(), tableName: table, seal };
});
afterAll(async () => {
  await control?.stop();
});

async function entries(chain: string): Promise<StoredEntry[]> {
  const out: StoredEntry[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :seq)',
        ExpressionAttributeValues: { ':pk': auditPk(chain), ':seq': 'SEQ#' },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    out.push(...((page.Items ?? []) as StoredEntry[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}

/** A merchant with `n` fee changes after its creation: entries 1 (merchant.created) … n+1. */
async function merchantWithChanges(n: number) {
  const created = await createMerchant(deps, { name: 'Audited' }, {}, operator);
  for (let i = 0; i < n; i++) await setMerchantFees(deps, { merchantId: created.merchantId, fees: { card: { percent_bps: 100 + i, fixed: 0 } } }, operator);
  return { ...created, chain: chainOf(created.merchantId) };
}

describe('the chain', () => {
  it('links each entry to the one before, from 64 zeros, and the head names the last', async () => {
    // Prepare / Act
    const m = await merchantWithChanges(3);
    // Assess
    const chain = await entries(m.chain);
    expect(chain.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(chain[0]!.prev_hash).toBe('0'.repeat(64));
    for (let i = 1; i < chain.length; i++) expect(chain[i]!.prev_hash).toBe(chain[i - 1]!.hash);
    for (const e of chain) expect(hashEntry(e as unknown as Record<string, unknown>)).toBe(e.hash);
    expect(chain.map((e) => e.action)).toEqual(['merchant.created', 'merchant.fees_set', 'merchant.fees_set', 'merchant.fees_set']);
    expect(chain[2]).toMatchObject({
      actor: operator.actor,
      request_id: 'req-operator',
      merchant_id: m.merchantId,
      target: { type: 'merchant', id: m.merchantId },
      before: { fee_schedule: { card: { percent_bps: 100, fixed: 0 } } },
      after: { fee_schedule: { card: { percent_bps: 101, fixed: 0 } } },
    });
    expect(await verifyChain(read(), m.chain)).toEqual({ chain: m.chain, ok: true, entries: 4, head: { seq: 4, hash: chain[3]!.hash } });
    expect(await listChains(read())).toContain(m.chain);
  });

  it('a change whose own condition fails writes no entry, and the chain does not move', async () => {
    const m = await merchantWithChanges(0);
    await expect(createMerchant(deps, { name: 'Again' }, { id: m.merchantId }, operator)).rejects.toMatchObject({ code: 'merchant_exists' });
    expect((await entries(m.chain)).map((e) => e.seq)).toEqual([1]);
  });
});

describe('verify names the first broken link', () => {
  it('an edited entry: hash_mismatch at exactly that entry', async () => {
    // Prepare
    const m = await merchantWithChanges(4);
    const victim = (await entries(m.chain))[2]!;
    // Act: someone with write access lowers the fee the entry says was set
    await dynamo().send(
      new UpdateCommand({ TableName: table, Key: entryKey(m.chain, 3), UpdateExpression: 'SET #after.fee_schedule.card.percent_bps = :low', ExpressionAttributeNames: { '#after': 'after' }, ExpressionAttributeValues: { ':low': 1 } }),
    );
    // Assess
    const verdict = await verifyChain(read(), m.chain);
    expect(verdict).toMatchObject({ ok: false, entries: 2, broken: { problem: 'hash_mismatch', seq: 3, entryId: victim.id } });
  });

  it('an entry rewritten with a recomputed hash: the next entry no longer links to it', async () => {
    const m = await merchantWithChanges(3);
    const victim = (await entries(m.chain))[1]!;
    const forged = { ...victim, actor: { type: 'system', name: 'nobody' } } as Record<string, unknown>;
    await dynamo().send(new PutCommand({ TableName: table, Item: { ...forged, hash: hashEntry(forged) } }));
    const verdict = await verifyChain(read(), m.chain);
    expect(verdict).toMatchObject({ ok: false, broken: { problem: 'prev_hash_mismatch', seq: 3 } });
  });

  it('a deleted entry: seq_gap at exactly its seq', async () => {
    const m = await merchantWithChanges(4);
    await dynamo().send(new DeleteCommand({ TableName: table, Key: entryKey(m.chain, 2) }));
    const verdict = await verifyChain(read(), m.chain);
    expect(verdict).toMatchObject({ ok: false, entries: 1, broken: { problem: 'seq_gap', seq: 2 } });
    expect(!verdict.ok && verdict.broken.message).toContain('seq 2');
  });

  it('a cut tail: head_mismatch; cut with the head moved back: only a signed head names it', async () => {
    const m = await merchantWithChanges(3);
    const chain = await entries(m.chain);
    await dynamo().send(new DeleteCommand({ TableName: table, Key: entryKey(m.chain, 4) }));
    expect(await verifyChain(read(), m.chain)).toMatchObject({ ok: false, broken: { problem: 'head_mismatch', seq: 4 } });
    // The head moved back too: the chain is consistent in itself…
    await dynamo().send(new UpdateCommand({ TableName: table, Key: headKey(m.chain), UpdateExpression: 'SET seq = :s, #h = :h', ExpressionAttributeNames: { '#h': 'hash' }, ExpressionAttributeValues: { ':s': 3, ':h': chain[2]!.hash } }));
    expect(await verifyChain(read(), m.chain)).toMatchObject({ ok: true, entries: 3 });
    // …and the signed head (functions/audit/heads.ts plugs in here) shows what was cut.
    const signedHead = { chain: m.chain, seq: 4, hash: chain[3]!.hash };
    expect(await verifyChain(read(), m.chain, { signedHead })).toMatchObject({ ok: false, broken: { problem: 'signed_head_mismatch', seq: 4 } });
  });
});

describe('concurrency', () => {
  it('10 parallel fee sets and 5 key creations of one merchant make one linear chain: seq 1..16, no fork, no gap', async () => {
    // Prepare
    const m = await merchantWithChanges(0);
    // Act
    const results = await Promise.allSettled([
      ...Array.from({ length: 10 }, (_, i) => setMerchantFees(deps, { merchantId: m.merchantId, fees: { card: { percent_bps: 200 + i, fixed: 0 } } }, operator)),
      ...Array.from({ length: 5 }, () => createRestrictedKey(deps, { merchantId: m.merchantId, scopes: 'orders:read' }, operator)),
    ]);
    // Assess
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const chain = await entries(m.chain);
    expect(chain.map((e) => e.seq)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(new Set(chain.map((e) => e.id)).size).toBe(16);
    expect(chain.filter((e) => e.action === 'api_key.created')).toHaveLength(5);
    expect(await verifyChain(read(), m.chain)).toMatchObject({ ok: true, entries: 16 });
    // The last fee entry's after is what the merchant item holds.
    const lastFees = chain.filter((e) => e.action === 'merchant.fees_set').at(-1)!;
    const { Items } = await dynamo().send(new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `MERCHANT#${m.merchantId}` }, ConsistentRead: true }));
    expect((lastFees.after as { fee_schedule: unknown }).fee_schedule).toEqual(Items!.find((i) => i.sk === 'MERCHANT')!.fee_schedule);
  });

  it('a caller item that refuses is reported to the caller, not retried', async () => {
    const chain = chainOf(newId('mch'));
    const result = await commitAudited(
      deps,
      [{ ConditionCheck: { TableName: table, Key: { pk: 'NOPE', sk: 'NOPE' }, ConditionExpression: 'attribute_exists(pk)' } }],
      { action: 'merchant.fees_set', merchantId: chain.slice('merchant:'.length), target: { type: 'merchant', id: 'x' } },
      operator,
    );
    expect(result).toEqual({ committed: false, reasons: ['ConditionalCheckFailed'] });
    expect(await entries(chain)).toEqual([]);
  });
});

/** The local cloud's API Gateway control plane, for the rate limits (as test/integration/merchants-cli.test.ts). */
async function usageDeps(): Promise<NonNullable<MerchantDeps['usage']>> {
  const usage = new UsagePlans('localapi', 'local', 'AUTHORIZER', [], {
    apiKeys: [],
    usagePlans: [{ id: 'plan0', name: 'payplane-local-merchants', throttle: { rateLimit: 100, burstLimit: 200 }, apiStages: [{ apiId: 'localapi', stage: 'local' }], keys: [] }],
  });
  const api = { model: { id: 'localapi', stage: 'local', name: 'payplane-local', root: { id: 'root' }, binaryMediaTypes: [], stageVariables: {} }, usage, flushAuthorizerCache: () => 0 };
  control = new ControlPlane(() => api as never, '000000000000');
  const url = (await control.start(0)).url;
  const apiGateway = new APIGatewayClient({ endpoint: url, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  return { apiGateway, restApiId: 'localapi', stageName: 'local' };
}

describe('every configuration change is recorded, and nothing secret is', () => {
  it('each action of AUDIT_ACTIONS (but payer.erased, the retention strand\'s) comes from its code path, masked', async () => {
    // Prepare
    const withUsage = { ...deps, usage: await usageDeps() };
    const bankAccount = '000123456789';
    // Act: every operator change of a merchant…
    const m = await createMerchant(withUsage, { name: 'Every action', fees: { card: { percent_bps: 250, fixed: 30 } } }, {}, operator);
    const merchantId = m.merchantId;
    await setMerchantFees(deps, { merchantId, fees: {} }, operator);
    await setRateLimits(withUsage, { merchantId, rateLimit: 50, burstLimit: 100 }, operator);
    await setReceipts(deps, { merchantId, email: 'on' }, operator);
    await setPayoutSettings(deps, { merchantId, currency: 'EUR', delayDays: 2, bankAccount }, operator);
    const rolled = await rollKey(deps, { merchantId }, operator);
    const restricted = await createRestrictedKey(deps, { merchantId, scopes: 'orders:read,refunds:write' }, operator);
    await revokeKey(deps, { keyId: restricted.keyId }, operator);
    // …the merchant's own, with its key…
    const caller: AuditedCaller = { merchantId, baseUrl: 'https://api.test', now: new Date(), by: keyActor(rolled.keyId, 'req-webhook') };
    const endpoints = new WebhookEndpointService(table);
    const endpoint = await endpoints.create(caller, { url: 'https://shop.example/hooks', enabled_events: ['*'] });
    await endpoints.update(caller, endpoint.id, { description: 'Shop' });
    const rolledSecret = await endpoints.rollSecret(caller, endpoint.id, { expires_in: 60 });
    await endpoints.delete(caller, endpoint.id);
    // …and the platform's: a rate and a settlement run.
    const platformBefore = (await entries(PLATFORM_CHAIN)).length;
    await setRate(deps, { from: 'ISK', to: 'USD', rate: '0.0072', effective_at: new Date().toISOString(), set_by: 'test' }, undefined, operator);
    const runId = `run-audit-${newId('x').slice(2, 14)}`;
    await tasks.prepare({ run_id: runId, merchant_id: merchantId, actor: operator.actor, request_id: 'req-run' }, tasks.taskDeps({ table }));
    // A retried Prepare (States.Retry) records the run once.
    await tasks.prepare({ run_id: runId, merchant_id: merchantId, actor: operator.actor, request_id: 'req-run' }, tasks.taskDeps({ table }));

    // Assess: every action
    const mine = await entries(chainOf(merchantId));
    const platform = (await entries(PLATFORM_CHAIN)).slice(platformBefore);
    const seen = new Set<AuditAction>([...mine, ...platform].map((e) => e.action));
    expect([...seen].sort()).toEqual(AUDIT_ACTIONS.filter((a) => a !== 'payer.erased').sort());
    expect(platform.filter((e) => e.action === 'settlement.run')).toHaveLength(1);
    expect(platform.find((e) => e.action === 'settlement.run')).toMatchObject({ actor: operator.actor, request_id: 'req-run', target: { type: 'settlement_run', id: runId } });
    expect(mine.find((e) => e.action === 'webhook_endpoint.created')).toMatchObject({
      actor: { type: 'merchant_key', key_id: rolled.keyId },
      request_id: 'req-webhook',
      after: { url: 'https://shop.example/hooks', enabled_events: ['*'] },
    });
    expect(mine.find((e) => e.action === 'merchant.payouts_set')!.after).toEqual({ payout: { settlement_currency: 'EUR', delay_days: 2, bank_account_last4: '6789' } });
    expect(mine.find((e) => e.action === 'api_key.created')!.after).toEqual({ key_id: restricted.keyId, kind: 'restricted', scopes: ['orders:read', 'refunds:write'] });
    // Masking: no secret, key, key hash, ciphertext, bank account or URL credential anywhere in the trail.
    const text = JSON.stringify([...mine, ...platform]);
    for (const secret of [m.secretKey.reveal(), rolled.secretKey.reveal(), restricted.secretKey.reveal(), endpoint.secret!, rolledSecret.secret!, bankAccount]) {
      expect(text).not.toContain(secret);
    }
    expect(text).not.toMatch(/sk_test_|rk_test_|whsec_|key_hash|ciphertext|secrets/);
    for (const e of [...mine, ...platform]) expect(JSON.stringify(e, (_, v) => (v instanceof Uint8Array ? 'BINARY' : v))).not.toContain('BINARY');
    expect(await verifyChain(read(), chainOf(merchantId))).toMatchObject({ ok: true, entries: mine.length });
  });
});

describe('GET /v1/audit_events (the service)', () => {
  it('lists the caller\'s own chain newest first, paginated, filtered by action; operators are "Payplane operator"', async () => {
    // Prepare
    const m = await merchantWithChanges(3);
    const other = await merchantWithChanges(1);
    // Act
    const first = await listAuditEvents({ merchantId: m.merchantId }, { limit: '2' }, read());
    const second = await listAuditEvents({ merchantId: m.merchantId }, { limit: '2', starting_after: first.data[1]!.id }, read());
    const fees = await listAuditEvents({ merchantId: m.merchantId }, { action: 'merchant.fees_set', limit: '2' }, read());
    // Assess
    expect(first).toMatchObject({ object: 'list', url: '/v1/audit_events', has_more: true });
    expect(first.data.map((e) => e.seq)).toEqual([4, 3]);
    expect(second.data.map((e) => e.seq)).toEqual([2, 1]);
    expect(second.has_more).toBe(false);
    expect(fees.data.map((e) => [e.seq, e.action])).toEqual([
      [4, 'merchant.fees_set'],
      [3, 'merchant.fees_set'],
    ]);
    expect(fees.has_more).toBe(true);
    expect(first.data[0]!.actor).toEqual({ type: 'operator', name: 'Payplane operator' });
    expect(JSON.stringify([first, second, fees])).not.toContain('arn:aws:iam');
    expect(JSON.stringify([first, second])).not.toContain(other.merchantId);
    await expect(listAuditEvents({ merchantId: m.merchantId }, { action: 'order.created' }, read())).rejects.toMatchObject({ param: 'action' });
  });
});
