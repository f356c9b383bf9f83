import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type Io } from '../../cli/main';
import { LOCAL_FILE_ENV, resolveTarget } from '../../cli/target';
import { open } from '../../functions/commons/crypto';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { getMerchant, getMerchantPayoutSettings, payoutUpdate } from '../../functions/merchants/repository';
import { authenticate, setPayoutSettings } from '../../functions/merchants/service';
import { TEST_BY } from '../actors';
import { usageKeyValue } from '../../functions/merchants/keys';
import { UsagePlans } from '../../local/apigateway-usage';
import { ControlPlane } from '../../local/control-plane';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { KMS } from '@aws-sdk/client-kms';
import { sealerFor } from '../../functions/commons/crypto';
import { useLocalServices } from './env';
import { startOperatorApi, type OperatorApiStandIn } from './operator-api';
import { merchantsDb, type MerchantsDb } from './merchants-dynamodb';

const ROOT = resolve(import.meta.dirname, '../..');
let ddb: MerchantsDb;
let dir: string;
let localFile: string;
let control: ControlPlane;
let apiGatewayStatus = 202;
/** The operator API the CLI's changes go to: the real handlers behind a SigV4-checking stand-in for API Gateway. */
let operatorApi: OperatorApiStandIn;
const flushes: string[] = [];
/** The default plan, as the template declares it (payplane-<stage>-merchants). */
const usage = new UsagePlans('localapi', 'local', 'AUTHORIZER', [], {
  apiKeys: [],
  usagePlans: [{ id: 'plan0', name: 'payplane-local-merchants', throttle: { rateLimit: 100, burstLimit: 200 }, apiStages: [{ apiId: 'localapi', stage: 'local' }], keys: [] }],
});

/**
 * The local cloud's real control plane (API keys, usage plans, authorizer-cache flushes), in front of a stand-in
 * for the API itself that records flushes and fails them on demand.
 */
async function startApiGateway(): Promise<string> {
  const api = {
    model: { id: 'localapi', stage: 'local', name: 'payplane-local', root: { id: 'root' }, binaryMediaTypes: [], stageVariables: {} },
    usage,
    flushAuthorizerCache: () => {
      flushes.push('DELETE /restapis/localapi/stages/local/cache/authorizers');
      if (apiGatewayStatus !== 202) throw Object.assign(new Error('boom'), { status: apiGatewayStatus });
      return 0;
    },
  };
  control = new ControlPlane(() => api as never, '000000000000');
  return (await control.start(0)).url;
}

/** The usage plan holding the merchant's API Gateway key, as the API would find it for the authorizer's usageIdentifierKey. */
function planOf(merchantId: string) {
  const key = usage.state.apiKeys.find((k) => k.value === usageKeyValue(merchantId));
  return key && usage.state.usagePlans.find((p) => p.keys.includes(key.id));
}

function writeLocalFile(path: string, dynamodb: string, apigateway: string, kms: { kms: string; kmsKeyArn: string } = { kms: 'http://127.0.0.1:1', kmsKeyArn: '' }, apiUrl = operatorApi.url) {
  writeFileSync(
    path,
    JSON.stringify({
      apiUrl,
      region: ddb.region,
      stage: 'local',
      restApiId: 'localapi',
      endpoints: { dynamodb, kms: kms.kms, apigateway },
      tables: { main: ddb.tableName, idempotency: 'payplane-idempotency-test' },
      ...(kms.kmsKeyArn ? { kmsKeyArn: kms.kmsKeyArn } : {}),
    }),
  );
}

beforeAll(async () => {
  ddb = await merchantsDb();
  dir = mkdtempSync(join(tmpdir(), 'payplane-cli-'));
  localFile = join(dir, 'local.json');
  const controlUrl = await startApiGateway();
  const services = useLocalServices();
  const local = { region: ddb.region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
  operatorApi = await startOperatorApi({
    deps: {
      merchants: {
        ...ddb.deps,
        usage: { apiGateway: new APIGatewayClient({ ...local, endpoint: controlUrl }), restApiId: 'localapi', stageName: 'local' },
        seal: sealerFor({ keyArn: services.kmsKeyArn!, kms: new KMS({ ...local, endpoint: services.endpoints.kms }) }),
      },
    },
    // What the CLI signs with when local.json names no operator keys (cli/target.ts LOCAL_CREDENTIALS).
    credentials: { local: 'local' },
    principal: 'arn:aws:sts::000000000000:assumed-role/PayplaneOperator/operator',
  });
  writeLocalFile(localFile, ddb.endpoint, controlUrl);
}, 60_000);
afterAll(async () => {
  await operatorApi?.stop();
  await control?.stop();
  rmSync(dir, { recursive: true, force: true });
  await ddb?.stop();
});

async function run(argv: string[], env: NodeJS.ProcessEnv = { [LOCAL_FILE_ENV]: localFile }) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), env };
  const code = await main(argv, io);
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('payplane merchants create', () => {
  it('prints the merchant and its key as JSON', async () => {
    // Act
    const { code, stdout } = await run(['merchants', 'create', '--name', 'Acme Coffee', '--json']);
    // Assess
    expect(code).toBe(0);
    const created = JSON.parse(stdout);
    expect(created).toEqual({
      object: 'merchant',
      id: expect.stringMatching(/^mch_/),
      name: 'Acme Coffee',
      created_at: expect.any(String),
      livemode: false,
      key_id: expect.stringMatching(/^key_/),
      secret_key: expect.stringMatching(/^sk_test_[A-Za-z0-9]{32}$/),
    });
    expect(await authenticate(ddb.deps, created.secret_key)).toMatchObject({ merchantId: created.id });
  });

  it('warns in text form that the key is shown once', async () => {
    const { code, stdout } = await run(['merchants', 'create', '--name=Text Form']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/Created merchant mch_\w+ \("Text Form"\) on the local cloud/);
    expect(stdout).toMatch(/sk_test_[A-Za-z0-9]{32}/);
    expect(stdout).toContain('shown once');
  });

  it('exits 2 with the field, value and fix for an invalid name', async () => {
    const { code, stderr } = await run(['merchants', 'create', '--name', '']);
    expect(code).toBe(2);
    expect(stderr).toContain(`Invalid 'name': got ""`);
  });
});

describe('payplane keys roll', () => {
  it('rolls the key, revokes the old one and flushes the authorizer cache', async () => {
    // Prepare
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Roll me', '--json'])).stdout);
    flushes.length = 0;
    // Act
    const { code, stdout } = await run(['keys', 'roll', '--merchant', created.id, '--json']);
    // Assess
    expect(code).toBe(0);
    const rolled = JSON.parse(stdout);
    expect(rolled).toEqual({
      merchant_id: created.id,
      key_id: expect.stringMatching(/^key_/),
      secret_key: expect.stringMatching(/^sk_test_[A-Za-z0-9]{32}$/),
      revoked_key_ids: [created.key_id],
      authorizer_cache_flushed: true,
    });
    expect(flushes).toEqual(['DELETE /restapis/localapi/stages/local/cache/authorizers']);
    await expect(authenticate(ddb.deps, created.secret_key)).rejects.toMatchObject({ code: 'api_key_revoked' });
    await expect(authenticate(ddb.deps, rolled.secret_key)).resolves.toMatchObject({ keyId: rolled.key_id });
  });

  it('still prints the new key, and exits 1 with the fix, when the flush fails', async () => {
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Flush fails', '--json'])).stdout);
    apiGatewayStatus = 500;
    try {
      const { code, stdout, stderr } = await run(['keys', 'roll', '--merchant', created.id, '--json']);
      expect(code).toBe(1);
      const rolled = JSON.parse(stdout);
      expect(rolled.authorizer_cache_flushed).toBe(false);
      expect(rolled.secret_key).toMatch(/^sk_test_/);
      expect(stderr).toContain('Revoked keys keep working for up to 300 s');
    } finally {
      apiGatewayStatus = 202;
    }
  });

  it('reports an unknown merchant', async () => {
    const { code, stderr } = await run(['keys', 'roll', '--merchant', 'mch_nobody']);
    expect(code).toBe(1);
    expect(stderr).toContain("No such merchant: 'mch_nobody'");
  });
});

describe('payplane merchants create: rate limits', () => {
  it("gives the merchant an API Gateway key in the stage's default usage plan, through the control API", async () => {
    // Act
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Plan me', '--json'])).stdout);
    // Assess: the value the authorizer returns as usageIdentifierKey is a key of the default plan
    expect(planOf(created.id)).toMatchObject({ name: 'payplane-local-merchants', throttle: { rateLimit: 100, burstLimit: 200 } });
  });

  it('a roll keeps the one API Gateway key (the merchant, not the secret, is what is limited)', async () => {
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Roll keeps plan', '--json'])).stdout);
    const keysBefore = usage.state.apiKeys.length;
    expect((await run(['keys', 'roll', '--merchant', created.id])).code).toBe(0);
    expect(usage.state.apiKeys.length).toBe(keysBefore);
    expect(planOf(created.id)?.name).toBe('payplane-local-merchants');
  });
});

describe('payplane merchants limits set', () => {
  it("moves the merchant's key into a plan of its own with the override; setting it again updates that plan", async () => {
    // Prepare
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Big merchant', '--json'])).stdout);
    // Act
    const set = await run(['merchants', 'limits', 'set', '--merchant', created.id, '--rate', '2000', '--burst', '4000', '--json']);
    // Assess
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toEqual({ merchant_id: created.id, rateLimit: 2000, burstLimit: 4000, usage_plan_id: expect.any(String) });
    expect(planOf(created.id)).toMatchObject({ name: `payplane-local-${created.id}`, throttle: { rateLimit: 2000, burstLimit: 4000 } });
    // Act: again, lower
    const again = await run(['merchants', 'limits', 'set', '--merchant', created.id, '--rate', '10', '--burst', '20']);
    // Assess: the same plan, new limits, the key still in exactly one plan of the stage
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('limited to 10 requests/s with bursts of 20');
    expect(planOf(created.id)).toMatchObject({ id: JSON.parse(set.stdout).usage_plan_id, throttle: { rateLimit: 10, burstLimit: 20 } });
    const key = usage.state.apiKeys.find((k) => k.value === usageKeyValue(created.id))!;
    expect(usage.state.usagePlans.filter((p) => p.keys.includes(key.id))).toHaveLength(1);
  });

  it.each([
    [['--rate', '20000', '--burst', '100'], "Invalid 'rate': got 20000. Pass a whole number from 1 to 10000"],
    [['--rate', '100', '--burst', '0'], "Invalid 'burst': got 0"],
    [['--rate', 'fast', '--burst', '10'], `Invalid 'rate': got "fast"`],
  ])('exits 2 naming the option and the range for %j', async (args, message) => {
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Bad limits', '--json'])).stdout);
    const { code, stderr } = await run(['merchants', 'limits', 'set', '--merchant', created.id, ...args]);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(planOf(created.id)?.name).toBe('payplane-local-merchants');
  });

  it('refuses an unknown merchant', async () => {
    const { code, stderr } = await run(['merchants', 'limits', 'set', '--merchant', 'mch_nobody', '--rate', '1', '--burst', '1']);
    expect(code).toBe(1);
    expect(stderr).toContain("No such merchant: 'mch_nobody'");
  });
});

describe('payplane merchants receipts set', () => {
  it('starts with receipts off, turns each channel on or off, and keeps a channel it is not given', async () => {
    // Prepare
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Receipts', '--json'])).stdout);
    expect((await getMerchant(ddb.deps, created.id))?.receipts).toBeUndefined();
    // Act
    const on = await run(['merchants', 'receipts', 'set', '--merchant', created.id, '--email', 'on', '--sms', 'on', '--json']);
    const smsOff = await run(['merchants', 'receipts', 'set', '--merchant', created.id, '--sms', 'off']);
    // Assess
    expect(on.code).toBe(0);
    expect(JSON.parse(on.stdout)).toEqual({ merchant_id: created.id, receipts: { email: true, sms: true } });
    expect(smsOff.code).toBe(0);
    expect(smsOff.stdout).toContain('email on, SMS off');
    expect((await getMerchant(ddb.deps, created.id))?.receipts).toEqual({ email: true, sms: false });
  });

  it.each([
    [['--email', 'yes'], `Invalid 'email': got "yes". Use on or off`],
    [[], "Give 'email' and/or 'sms' as on or off"],
  ])('exits 2 naming the option, the value and the fix for %j', async (args, message) => {
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Bad receipts', '--json'])).stdout);
    const { code, stderr } = await run(['merchants', 'receipts', 'set', '--merchant', created.id, ...args]);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
  });

  it('refuses an unknown merchant', async () => {
    const { code, stderr } = await run(['merchants', 'receipts', 'set', '--merchant', 'mch_nobody', '--email', 'on']);
    expect(code).toBe(1);
    expect(stderr).toContain("No such merchant: 'mch_nobody'");
  });
});

describe('payplane merchants payouts set', () => {
  /** A local.json that also names the KMS emulator and the stack's key: what `npm start` writes. */
  let withKms: NodeJS.ProcessEnv;
  beforeAll(() => {
    const services = useLocalServices();
    const file = join(dir, 'local-kms.json');
    writeLocalFile(file, ddb.endpoint, 'http://127.0.0.1:1', { kms: services.endpoints.kms, kmsKeyArn: services.kmsKeyArn });
    withKms = { [LOCAL_FILE_ENV]: file };
  });

  it('applies the defaults until set, seals the bank account bound to the merchant, and shows only its last 4', async () => {
    // Prepare
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Payouts', '--json'])).stdout);
    expect(await getMerchantPayoutSettings(ddb.deps, created.id)).toEqual({ settlement_currency: 'USD', delay_days: 1 });
    // Act
    const set = await run(['merchants', 'payouts', 'set', '--merchant', created.id, '--currency', 'eur', '--delay-days', '3', '--bank-account', '0001 2345 6789', '--json'], withKms);
    const delayOnly = await run(['merchants', 'payouts', 'set', '--merchant', created.id, '--delay-days', '0'], withKms);
    // Assess
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toEqual({ merchant_id: created.id, payout: { settlement_currency: 'EUR', delay_days: 3, bank_account_last4: '6789' } });
    expect(set.stdout + delayOnly.stdout).not.toContain('000123456789');
    expect(delayOnly.code).toBe(0);
    expect(delayOnly.stdout).toContain('T+0');
    expect(delayOnly.stdout).toContain('…6789 (sealed)');
    const settings = await getMerchantPayoutSettings(ddb.deps, created.id, { consistent: true });
    expect(settings).toMatchObject({ settlement_currency: 'EUR', delay_days: 0, bank_account_last4: '6789' });
    const ciphertext = settings.bank_account_ciphertext!;
    expect(Buffer.from(ciphertext).toString('latin1')).not.toContain('000123456789');
    const binding = { purpose: 'bank_account', merchantId: created.id, recordId: created.id };
    expect((await open<string>(ciphertext, binding)).reveal()).toBe('000123456789');
    await expect(open(ciphertext, { ...binding, merchantId: 'mch_other', recordId: 'mch_other' })).rejects.toThrow(/another record/);
  });

  it('takes the platform default currency from SETTLEMENT_CURRENCY', async () => {
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Default currency', '--json'])).stdout);
    const before = process.env.SETTLEMENT_CURRENCY;
    process.env.SETTLEMENT_CURRENCY = 'JPY';
    try {
      expect(await getMerchantPayoutSettings(ddb.deps, created.id)).toEqual({ settlement_currency: 'JPY', delay_days: 1 });
    } finally {
      if (before === undefined) delete process.env.SETTLEMENT_CURRENCY;
      else process.env.SETTLEMENT_CURRENCY = before;
    }
  });

  it.each([
    [['--currency', 'XAU'], `Invalid 'currency': got "XAU". Use a payable ISO 4217 code`],
    [['--delay-days', '31'], `Invalid 'delay_days': got "31". Use 0 to 30.`],
    [['--delay-days', '1.5'], `Invalid 'delay_days': got "1.5". Use a whole number of business days from 0 to 30`],
    [['--bank-account', '12a4567890'], `Invalid 'bank_account': got 10 characters ending in 7890. Use the account number as 6 to 34 digits`],
    [[], "Give at least one of 'currency', 'delay_days' or 'bank_account'"],
  ])('exits 2 naming the option, the value and the fix for %j', async (args, message) => {
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Bad payouts', '--json'])).stdout);
    const { code, stderr } = await run(['merchants', 'payouts', 'set', '--merchant', created.id, ...args], withKms);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect((await getMerchant(ddb.deps, created.id))?.payout).toBeUndefined();
  });

  it('never echoes a bank account number it refuses', async () => {
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Echo', '--json'])).stdout);
    const { code, stderr } = await run(['merchants', 'payouts', 'set', '--merchant', created.id, '--bank-account', '98765432109876x'], withKms);
    expect(code).toBe(2);
    expect(stderr).not.toContain('98765432109876');
  });

  it('refuses a change made from settings another operator has changed meanwhile, changing nothing', async () => {
    // Prepare: two operators read version 1; one of them writes first.
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Two operators', '--json'])).stdout);
    expect((await run(['merchants', 'payouts', 'set', '--merchant', created.id, '--delay-days', '2'], withKms)).code).toBe(0);
    const read = (await getMerchant(ddb.deps, created.id))!.payout!;
    // Act: the second writes from what it read, after the first (another operator) committed its own change.
    let raced = false;
    const racing = {
      ...ddb.deps,
      db: {
        send: async (command: object) => {
          if (command instanceof TransactWriteCommand && !raced) {
            raced = true;
            const first = payoutUpdate(ddb.deps, created.id, { ...read, delay_days: 3, version: read.version + 1 }, read.version);
            await ddb.deps.db.send(new TransactWriteCommand({ TransactItems: [first] }));
          }
          return ddb.deps.db.send(command as TransactWriteCommand);
        },
      },
    } as typeof ddb.deps;
    const late = setPayoutSettings(racing, { merchantId: created.id, delayDays: 7 }, TEST_BY);
    // Assess
    await expect(late).rejects.toMatchObject({ status: 409, code: 'payout_settings_conflict', message: expect.stringContaining('Run it again') });
    expect((await getMerchantPayoutSettings(ddb.deps, created.id, { consistent: true })).delay_days).toBe(3);
  });

  it('refuses an unknown merchant', async () => {
    const { code, stderr } = await run(['merchants', 'payouts', 'set', '--merchant', 'mch_nobody', '--delay-days', '2'], withKms);
    expect(code).toBe(1);
    expect(stderr).toContain("No such merchant: 'mch_nobody'");
  });
});

describe('payplane keys create / revoke (restricted keys)', () => {
  it('creates an rk_test_ key with its scopes; keys roll leaves it alone; keys revoke --key revokes it and flushes', async () => {
    // Prepare
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Restricted', '--json'])).stdout);
    // Act
    const made = await run(['keys', 'create', '--merchant', created.id, '--scope', 'orders:read,refunds:write', '--json']);
    // Assess
    expect(made.code).toBe(0);
    const rk = JSON.parse(made.stdout);
    expect(rk).toEqual({
      object: 'api_key',
      merchant_id: created.id,
      key_id: expect.stringMatching(/^key_/),
      restricted_key: expect.stringMatching(/^rk_test_[A-Za-z0-9]{32}$/),
      scopes: ['orders:read', 'refunds:write'],
    });
    expect(await authenticate(ddb.deps, rk.restricted_key)).toMatchObject({ merchantId: created.id, keyId: rk.key_id, scopes: 'orders:read,refunds:write' });
    expect(await authenticate(ddb.deps, created.secret_key)).toMatchObject({ scopes: '*' });

    // Act: roll the secret key
    const rolled = JSON.parse((await run(['keys', 'roll', '--merchant', created.id, '--json'])).stdout);
    // Assess: only the secret key was revoked
    expect(rolled.revoked_key_ids).toEqual([created.key_id]);
    await expect(authenticate(ddb.deps, rk.restricted_key)).resolves.toMatchObject({ keyId: rk.key_id });

    // Act: revoke the restricted key
    flushes.length = 0;
    const revoked = await run(['keys', 'revoke', '--key', rk.key_id, '--json']);
    // Assess
    expect(revoked.code).toBe(0);
    expect(JSON.parse(revoked.stdout)).toEqual({
      merchant_id: created.id,
      key_id: rk.key_id,
      kind: 'restricted',
      revoked: true,
      authorizer_cache_flushed: true,
    });
    expect(flushes).toEqual(['DELETE /restapis/localapi/stages/local/cache/authorizers']);
    await expect(authenticate(ddb.deps, rk.restricted_key)).rejects.toMatchObject({ code: 'api_key_revoked' });
    await expect(authenticate(ddb.deps, rolled.secret_key)).resolves.toMatchObject({ keyId: rolled.key_id });
    // Again: nothing to do
    expect((await run(['keys', 'revoke', '--key', rk.key_id])).stdout).toContain('was already revoked; nothing changed');
  });

  it('revoking the secret key leaves the merchant without one until the next roll, which works', async () => {
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Revoke secret', '--json'])).stdout);
    const revoked = await run(['keys', 'revoke', '--key', created.key_id]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`no secret key now: issue one with payplane keys roll --merchant ${created.id}`);
    await expect(authenticate(ddb.deps, created.secret_key)).rejects.toMatchObject({ code: 'api_key_revoked' });
    expect(await getMerchant(ddb.deps, created.id)).not.toHaveProperty('active_key_id');
    const rolled = JSON.parse((await run(['keys', 'roll', '--merchant', created.id, '--json'])).stdout);
    expect(rolled.revoked_key_ids).toEqual([]);
    await expect(authenticate(ddb.deps, rolled.secret_key)).resolves.toMatchObject({ keyId: rolled.key_id });
  });

  it.each([
    [['keys', 'create', '--merchant', 'mch_x', '--scope', 'orders:delete'], "Invalid 'scope': got \"orders:delete\" (unknown: orders:delete)"],
    [['keys', 'create', '--merchant', 'mch_x', '--scope', ''], "Invalid 'scope'"],
    [['keys', 'create', '--merchant', 'mch_x'], "'keys create' needs --scope"],
    [['keys', 'revoke'], "'keys revoke' needs --key"],
    [['keys', 'revoke', '--key', 'sk_test_x'], "Invalid 'key': got \"sk_test_x\". Key ids are 'key_'"],
  ])('exits 2 naming the fix for %j', async (argv, message) => {
    const { code, stderr } = await run(argv);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
  });

  it('reports an unknown key id and an unknown merchant', async () => {
    expect((await run(['keys', 'revoke', '--key', 'key_nobody'])).stderr).toContain("No such API key: 'key_nobody'");
    expect((await run(['keys', 'create', '--merchant', 'mch_nobody', '--scope', 'orders:read'])).stderr).toContain("No such merchant: 'mch_nobody'");
  });
});

describe('payplane merchants fees', () => {
  const FEES = '{"card":{"percent_bps":250,"fixed":25},"wallet":{"percent_bps":150}}';

  it('create --fees stores the override on the merchant', async () => {
    // Act
    const { code, stdout } = await run(['merchants', 'create', '--name', 'Custom fees', '--fees', FEES, '--json']);
    // Assess
    expect(code).toBe(0);
    const created = JSON.parse(stdout);
    expect(created.fee_schedule).toEqual(JSON.parse(FEES));
    expect((await getMerchant(ddb.deps, created.id))?.fee_schedule).toEqual(JSON.parse(FEES));
  });

  it('fees set replaces the whole override; {} removes it', async () => {
    // Prepare
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Fees later', '--fees', FEES, '--json'])).stdout);
    // Act
    const set = await run(['merchants', 'fees', 'set', '--merchant', created.id, '--fees', '{"wallet":{"fixed":5}}', '--json']);
    // Assess
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toEqual({ object: 'merchant', id: created.id, name: 'Fees later', created_at: created.created_at, fee_schedule: { wallet: { fixed: 5 } } });
    expect((await getMerchant(ddb.deps, created.id))?.fee_schedule).toEqual({ wallet: { fixed: 5 } });
    // Act: remove, in text form
    const removed = await run(['merchants', 'fees', 'set', '--merchant', created.id, '--fees', '{}']);
    // Assess
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain(`Removed the fee override of merchant ${created.id}`);
    expect(removed.stdout).toContain('keep the rate they were confirmed with');
    expect((await getMerchant(ddb.deps, created.id))?.fee_schedule).toBeUndefined();
  });

  it.each([
    ['{"card":{"percent_bps":2.5}}', ["field 'card.percent_bps'", '(got 2.5)', '"percent_bps": 0-10000']],
    ['{"card":{"fixed_by_currency":{"YEN":30}}}', ["field 'card.fixed_by_currency.YEN'", 'ISO 4217']],
    ['{"crypto":{}}', ['crypto']],
    ['card=250', ['Invalid --fees: got "card=250", which is not JSON', `--fees '{"card":`]],
  ])('exits 2 naming the field, the value and the fix for --fees %s, and changes nothing', async (fees, messages) => {
    // Prepare
    const created = JSON.parse((await run(['merchants', 'create', '--name', 'Bad fees', '--json'])).stdout);
    // Act
    const set = await run(['merchants', 'fees', 'set', '--merchant', created.id, '--fees', fees]);
    const create = await run(['merchants', 'create', '--name', 'Bad fees', '--fees', fees]);
    // Assess
    for (const { code, stderr } of [set, create]) {
      expect(code).toBe(2);
      for (const m of messages) expect(stderr).toContain(m);
    }
    expect((await getMerchant(ddb.deps, created.id))?.fee_schedule).toBeUndefined();
  });

  it('refuses an unknown merchant instead of creating it', async () => {
    const { code, stderr } = await run(['merchants', 'fees', 'set', '--merchant', 'mch_nobody', '--fees', FEES]);
    expect(code).toBe(1);
    expect(stderr).toContain("No such merchant: 'mch_nobody'");
    expect(await getMerchant(ddb.deps, 'mch_nobody')).toBeUndefined();
  });
});

describe('arguments and targets', () => {
  it.each([
    [['merchants', 'create'], "'merchants create' needs --name"],
    [['keys', 'roll'], "'keys roll' needs --merchant"],
    [['merchants', 'fees', 'set'], "'merchants fees set' needs --merchant and --fees, e.g. --merchant mch_… --fees '{"],
    [['merchants', 'fees', 'set', '--merchant', 'mch_x'], "'merchants fees set' needs --fees"],
    [['keys', 'roll', '--merchant', 'mch_x', '--fees', '{}'], "Option --fees does not apply to 'keys roll'"],
    [['merchants', 'delete'], "Unknown command 'merchants delete'"],
    [['keys', 'roll', '--merchant', 'mch_x', '--name', 'x'], "Option --name does not apply to 'keys roll'"],
    [['keys', 'roll', '--merchant', 'mch_x', '--bogus'], "Unknown option '--bogus'"],
    [['merchants', 'create', '--name', 'x', '--stage', 'staging'], "Invalid --stage 'staging'"],
    [['merchants', 'create', '--name', 'x', '--region', 'eu-west-1'], 'add --stage dev'],
  ])('exits 2 with the usage for %j', async (argv, message) => {
    const { code, stderr } = await run(argv);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(stderr).toContain('Usage: payplane');
  });

  it('prints the help', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('merchants create --name');
  });

  it('says how to start the local cloud when it is not running', async () => {
    const { code, stderr } = await run(['merchants', 'create', '--name', 'x'], { [LOCAL_FILE_ENV]: join(dir, 'missing.json') });
    expect(code).toBe(1);
    expect(stderr).toContain('npm start');
  });

  it('says how to start the local cloud when local.json is stale', async () => {
    const stale = join(dir, 'stale.json');
    writeLocalFile(stale, 'http://127.0.0.1:9', 'http://127.0.0.1:9', undefined, 'http://127.0.0.1:9/local');
    const { code, stderr } = await run(['merchants', 'create', '--name', 'x'], { [LOCAL_FILE_ENV]: stale });
    expect(code).toBe(1);
    expect(stderr).toContain('is not answering');
    expect(stderr).toContain('npm start');
  });

  it('finds a deployed stage from its stack outputs (CloudFormation stubbed: no AWS call)', async () => {
    // Prepare
    const calls: unknown[] = [];
    const cloudFormation = {
      send: async (command: DescribeStacksCommand) => {
        calls.push(command.input);
        return {
          Stacks: [
            {
              Outputs: [
                { OutputKey: 'TableName', OutputValue: 'Payplane-dev-Main' },
                { OutputKey: 'RestApiId', OutputValue: 'abc123' },
                { OutputKey: 'StageName', OutputValue: 'dev' },
              ],
            },
          ],
        };
      },
    } as never;
    // Act
    const target = await resolveTarget({ stage: 'dev', region: 'eu-west-1', profile: 'ops' }, {}, { cloudFormation });
    // Assess
    expect(calls).toEqual([{ StackName: 'Payplane-dev' }]);
    expect(target).toMatchObject({ kind: 'stage', restApiId: 'abc123', stageName: 'dev', merchants: { tableName: 'Payplane-dev-Main' } });
    expect(target.flushHint).toBe('aws apigateway flush-stage-authorizers-cache --rest-api-id abc123 --stage-name dev --region eu-west-1 --profile ops');
    expect(await target.merchants.db.config.region()).toBe('eu-west-1');
  });

  it('names the missing stack output', async () => {
    const cloudFormation = { send: async () => ({ Stacks: [{ Outputs: [{ OutputKey: 'TableName', OutputValue: 't' }] }] }) } as never;
    await expect(resolveTarget({ stage: 'prod', region: 'eu-west-1' }, {}, { cloudFormation })).rejects.toThrow(
      "Stack Payplane-prod has no output 'RestApiId'",
    );
  });
});

describe('the payplane binary', () => {
  it('runs as a child process through tsx', async () => {
    // Act
    const { stdout } = await promisify(execFile)(process.execPath, ['cli/payplane.mjs', 'merchants', 'create', '--name', 'Binary', '--json'], {
      cwd: ROOT,
      env: { ...process.env, [LOCAL_FILE_ENV]: localFile },
    });
    // Assess
    const created = JSON.parse(stdout);
    expect(created).toMatchObject({ name: 'Binary', id: expect.stringMatching(/^mch_/), secret_key: expect.stringMatching(/^sk_test_/) });
  }, 30_000);

  it('exits 2 on bad arguments', async () => {
    const failure = await promisify(execFile)(process.execPath, ['cli/payplane.mjs', 'keys', 'roll'], { cwd: ROOT }).catch((e) => e);
    expect(failure.code).toBe(2);
    expect(failure.stderr).toContain('Usage: payplane');
  }, 30_000);
});
