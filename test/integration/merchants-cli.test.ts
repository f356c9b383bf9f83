import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type Io } from '../../cli/main';
import { LOCAL_FILE_ENV, resolveTarget } from '../../cli/target';
import { getMerchant } from '../../functions/merchants/repository';
import { authenticate } from '../../functions/merchants/service';
import { merchantsDb, type MerchantsDb } from './merchants-dynamodb';

const ROOT = resolve(import.meta.dirname, '../..');
let ddb: MerchantsDb;
let dir: string;
let localFile: string;
let apiGateway: Server;
let apiGatewayStatus = 202;
const flushes: string[] = [];

/** A stand-in for the local cloud's API Gateway endpoint: records authorizer-cache flushes. */
function startApiGateway(): Promise<string> {
  apiGateway = createServer((req, res) => {
    flushes.push(`${req.method} ${req.url}`);
    res.writeHead(apiGatewayStatus, { 'Content-Type': 'application/json' }).end(apiGatewayStatus === 202 ? '' : '{"message":"boom"}');
  });
  return new Promise((done) =>
    apiGateway.listen(0, '127.0.0.1', () => done(`http://127.0.0.1:${(apiGateway.address() as { port: number }).port}`)),
  );
}

function writeLocalFile(path: string, dynamodb: string, apigateway: string) {
  writeFileSync(
    path,
    JSON.stringify({
      apiUrl: 'http://127.0.0.1:3000',
      region: ddb.region,
      stage: 'local',
      restApiId: 'localapi',
      endpoints: { dynamodb, kms: 'http://127.0.0.1:1', apigateway },
      tables: { main: ddb.tableName, idempotency: 'payplane-idempotency-test' },
    }),
  );
}

beforeAll(async () => {
  ddb = await merchantsDb();
  dir = mkdtempSync(join(tmpdir(), 'payplane-cli-'));
  localFile = join(dir, 'local.json');
  writeLocalFile(localFile, ddb.endpoint, await startApiGateway());
}, 60_000);
afterAll(async () => {
  apiGateway?.close();
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
    writeLocalFile(stale, 'http://127.0.0.1:9', 'http://127.0.0.1:9');
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
