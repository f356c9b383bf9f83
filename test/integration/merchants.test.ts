import { GetCommand, PutCommand, QueryCommand, ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticationError, ConflictError, InvalidRequestError, NotFoundError } from '../../functions/commons/errors';
import { hashSecretKey } from '../../functions/merchants/keys';
import {
  authenticate,
  createMerchant,
  DEMO_MERCHANT_ID,
  ensureDemoMerchant,
  rollKey,
  type MerchantDeps,
} from '../../functions/merchants/service';
import { merchantsDb, type MerchantsDb } from './merchants-dynamodb';
import { TEST_BY } from '../actors';

let ddb: MerchantsDb;
let deps: MerchantDeps;

beforeAll(async () => {
  ddb = await merchantsDb();
  deps = ddb.deps;
}, 60_000);
afterAll(() => ddb?.stop());

async function authCode(key: string): Promise<string> {
  try {
    await authenticate(deps, key);
    return 'ok';
  } catch (error) {
    expect(error).toBeInstanceOf(AuthenticationError);
    return (error as AuthenticationError).code;
  }
}

async function keysOf(merchantId: string) {
  const { Items = [] } = await deps.db.send(
    new QueryCommand({
      TableName: deps.tableName,
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :pk AND begins_with(gsi1sk, :p)',
      ExpressionAttributeValues: { ':pk': `MERCHANT#${merchantId}`, ':p': 'APIKEY#' },
    }),
  );
  return Items;
}

describe('create a merchant', () => {
  it('returns the merchant and a key that authenticates', async () => {
    // Act
    const created = await createMerchant(deps, { name: '  Acme Coffee ' }, {}, TEST_BY);
    // Assess
    expect(created.merchant).toEqual({ id: expect.stringMatching(/^mch_[A-Za-z0-9]{24}$/), name: 'Acme Coffee', created_at: expect.any(String) });
    expect(created.secretKey.reveal()).toMatch(/^sk_test_[A-Za-z0-9]{32}$/);
    expect(await authenticate(deps, created.secretKey)).toEqual({ merchantId: created.merchant.id, keyId: created.keyId, livemode: false, scopes: '*' });
  });

  it('stores the items of the contract, and no plaintext key anywhere', async () => {
    // Prepare
    const created = await createMerchant(deps, { name: 'Plaintext check' }, {}, TEST_BY);
    const secret = created.secretKey.reveal();
    // Act
    const { Item: merchant } = await deps.db.send(new GetCommand({ TableName: deps.tableName, Key: { pk: `MERCHANT#${created.merchantId}`, sk: 'MERCHANT' } }));
    const { Item: key } = await deps.db.send(new GetCommand({ TableName: deps.tableName, Key: { pk: `APIKEY#${hashSecretKey(secret)}`, sk: 'APIKEY' } }));
    const { Items = [] } = await deps.db.send(new ScanCommand({ TableName: deps.tableName }));
    // Assess
    expect(merchant).toMatchObject({ type: 'merchant', id: created.merchantId, name: 'Plaintext check', created_at: created.merchant.created_at });
    expect(key).toEqual({
      pk: `APIKEY#${hashSecretKey(secret)}`,
      sk: 'APIKEY',
      type: 'api_key',
      key_id: created.keyId,
      merchant_id: created.merchantId,
      status: 'active',
      kind: 'secret',
      livemode: false,
      created_at: created.merchant.created_at,
      gsi1pk: `MERCHANT#${created.merchantId}`,
      gsi1sk: `APIKEY#${created.merchant.created_at}#${created.keyId}`,
    });
    const dump = JSON.stringify(Items);
    expect(dump).not.toContain(secret);
    expect(dump).not.toContain(secret.slice(8)); // nor its random part
  });

  it('refuses an invalid name before touching the table', async () => {
    const sent: unknown[] = [];
    const recording = { ...deps, db: { send: (command: unknown) => (sent.push(command), deps.db.send(command as never)) } } as unknown as MerchantDeps;
    await expect(createMerchant(recording, { name: '' }, {}, TEST_BY)).rejects.toThrow(InvalidRequestError);
    expect(sent).toEqual([]);
  });

  it('refuses to create a fixed id twice', async () => {
    await createMerchant(deps, { name: 'Fixed' }, { id: 'mch_fixed1' }, TEST_BY);
    await expect(createMerchant(deps, { name: 'Fixed' }, { id: 'mch_fixed1' }, TEST_BY)).rejects.toMatchObject({
      name: 'ConflictError',
      code: 'merchant_exists',
    });
  });
});

describe('authenticate', () => {
  it('refuses an unknown key', async () => {
    expect(await authCode('sk_test_' + 'x'.repeat(32))).toBe('api_key_unknown');
  });

  it('refuses a malformed key without a table read', async () => {
    expect(await authCode('sk_live_' + 'x'.repeat(32))).toBe('api_key_malformed');
  });
});

describe('roll a key', () => {
  it('revokes the old key and activates the new one', async () => {
    // Prepare
    const created = await createMerchant(deps, { name: 'Roller' }, {}, TEST_BY);
    // Act
    const rolled = await rollKey(deps, { merchantId: created.merchantId }, TEST_BY);
    // Assess
    expect(rolled.revokedKeyIds).toEqual([created.keyId]);
    expect(await authCode(created.secretKey.reveal())).toBe('api_key_revoked');
    expect(await authenticate(deps, rolled.secretKey)).toEqual({ merchantId: created.merchantId, keyId: rolled.keyId, livemode: false, scopes: '*' });
    const keys = await keysOf(created.merchantId);
    expect(keys.map((k) => [k.key_id, k.status])).toEqual(
      expect.arrayContaining([
        [created.keyId, 'revoked'],
        [rolled.keyId, 'active'],
      ]),
    );
    expect(keys.find((k) => k.key_id === created.keyId)?.revoked_at).toEqual(expect.any(String));
  });

  it('keeps exactly one active key when rolled repeatedly', async () => {
    const created = await createMerchant(deps, { name: 'Serial roller' }, {}, TEST_BY);
    let last = created.secretKey.reveal();
    for (let i = 0; i < 3; i++) {
      const rolled = await rollKey(deps, { merchantId: created.merchantId }, TEST_BY);
      expect(await authCode(last)).toBe('api_key_revoked');
      last = rolled.secretKey.reveal();
    }
    const keys = await keysOf(created.merchantId);
    expect(keys).toHaveLength(4);
    expect(keys.filter((k) => k.status === 'active')).toHaveLength(1);
    expect(await authCode(last)).toBe('ok');
  });

  it('rolls a merchant written to the contract shape only (no version, no active-key pointer)', async () => {
    // Prepare: items as a fixture would write them
    const secret = 'sk_test_' + 'F1xture'.repeat(5).slice(0, 32);
    const createdAt = new Date().toISOString();
    await deps.db.send(new PutCommand({ TableName: deps.tableName, Item: { pk: 'MERCHANT#mch_fixture', sk: 'MERCHANT', type: 'merchant', id: 'mch_fixture', name: 'Fixture', created_at: createdAt } }));
    await deps.db.send(
      new PutCommand({
        TableName: deps.tableName,
        Item: {
          pk: `APIKEY#${hashSecretKey(secret)}`,
          sk: 'APIKEY',
          type: 'api_key',
          key_id: 'key_fixture',
          merchant_id: 'mch_fixture',
          status: 'active',
          livemode: false,
          created_at: createdAt,
          gsi1pk: 'MERCHANT#mch_fixture',
          gsi1sk: `APIKEY#${createdAt}#key_fixture`,
        },
      }),
    );
    expect(await authCode(secret)).toBe('ok');
    // Act
    const first = await rollKey(deps, { merchantId: 'mch_fixture' }, TEST_BY);
    const second = await rollKey(deps, { merchantId: 'mch_fixture' }, TEST_BY);
    // Assess
    expect(first.revokedKeyIds).toEqual(['key_fixture']);
    expect(second.revokedKeyIds).toEqual([first.keyId]);
    expect(await authCode(secret)).toBe('api_key_revoked');
    expect(await authCode(first.secretKey.reveal())).toBe('api_key_revoked');
    expect(await authCode(second.secretKey.reveal())).toBe('ok');
  });

  it('reports an unknown merchant as not found', async () => {
    await expect(rollKey(deps, { merchantId: 'mch_doesnotexist' }, TEST_BY)).rejects.toThrow(NotFoundError);
    await expect(rollKey(deps, { merchantId: 'mch_doesnotexist' }, TEST_BY)).rejects.toThrow("No such merchant: 'mch_doesnotexist'");
  });

  it('refuses a malformed merchant id', async () => {
    await expect(rollKey(deps, { merchantId: 'acme' }, TEST_BY)).rejects.toMatchObject({ name: 'InvalidRequestError', param: 'merchant_id' });
  });

  it('leaves exactly one active key when 10 rolls race', async () => {
    // Prepare
    const created = await createMerchant(deps, { name: 'Racer' }, {}, TEST_BY);
    // Act
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => rollKey(deps, { merchantId: created.merchantId }, TEST_BY)));
    // Assess: every roll either won or lost cleanly to another one
    const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(won.length).toBeGreaterThanOrEqual(1);
    for (const reason of lost) {
      expect(reason).toBeInstanceOf(ConflictError);
      expect((reason as ConflictError).code).toBe('key_roll_conflict');
    }
    const keys = await keysOf(created.merchantId);
    expect(keys).toHaveLength(1 + won.length); // a loser wrote nothing
    const active = keys.filter((k) => k.status === 'active');
    expect(active).toHaveLength(1);
    expect(keys.filter((k) => k.status === 'revoked')).toHaveLength(won.length);
    // The active key is the last winner's, and only it authenticates.
    const codes = await Promise.all(won.map((w) => authCode(w.secretKey.reveal())));
    expect(codes.filter((c) => c === 'ok')).toHaveLength(1);
    expect(won[codes.indexOf('ok')]!.keyId).toBe(active[0]!.key_id);
    expect(await authCode(created.secretKey.reveal())).toBe('api_key_revoked');
  });

  it('does not trust gsi1 to list the key to revoke (the index is eventually consistent)', async () => {
    // Prepare: a view of the table whose gsi1 lags behind every write
    const created = await createMerchant(deps, { name: 'Lagging index' }, {}, TEST_BY);
    const lagging: MerchantDeps = {
      ...deps,
      db: {
        send: (command: unknown) => (command instanceof QueryCommand ? Promise.resolve({ Items: [] }) : deps.db.send(command as never)),
      } as unknown as DynamoDBDocumentClient,
    };
    // Act
    const first = await rollKey(lagging, { merchantId: created.merchantId }, TEST_BY);
    const racing = await Promise.allSettled(Array.from({ length: 5 }, () => rollKey(lagging, { merchantId: created.merchantId }, TEST_BY)));
    // Assess
    expect(first.revokedKeyIds).toEqual([created.keyId]);
    const keys = await keysOf(created.merchantId);
    expect(keys.filter((k) => k.status === 'active')).toHaveLength(1);
    expect(keys).toHaveLength(2 + racing.filter((r) => r.status === 'fulfilled').length);
  });
});

describe('demo merchant', () => {
  it('is created once with a fixed id and gets a fresh key on every start', async () => {
    // Prepare: the table may be shared with other suites; the demo merchant may exist already
    const existed = (await deps.db.send(new GetCommand({ TableName: deps.tableName, Key: { pk: `MERCHANT#${DEMO_MERCHANT_ID}`, sk: 'MERCHANT' } }))).Item;
    // Act
    const first = await ensureDemoMerchant(deps, TEST_BY);
    const second = await ensureDemoMerchant(deps, TEST_BY);
    // Assess
    expect(first).toMatchObject({ created: !existed, merchantId: DEMO_MERCHANT_ID, merchant: { id: DEMO_MERCHANT_ID, name: 'Demo merchant' } });
    expect(second).toMatchObject({ created: false, merchantId: DEMO_MERCHANT_ID, merchant: first.merchant });
    expect(second.secretKey.reveal()).not.toBe(first.secretKey.reveal());
    expect(await authCode(first.secretKey.reveal())).toBe('api_key_revoked');
    expect(await authCode(second.secretKey.reveal())).toBe('ok');
  });
});
