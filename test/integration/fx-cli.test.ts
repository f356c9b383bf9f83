import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type Io } from '../../cli/main';
import { LOCAL_FILE_ENV } from '../../cli/target';
import { rateInForce } from '../../functions/fx';
import { merchantsDb, type MerchantsDb } from './merchants-dynamodb';
import { startOperatorApi, type OperatorApiStandIn } from './operator-api';

/** The IAM principal the operator API hands the handler: what `set_by` records, whatever the client says. */
const FINANCE = 'arn:aws:sts::000000000000:assumed-role/PayplaneFinance/finance';

/**
 * `payplane fx set|list` against DynamoDB Local through the CLI's own entry point (cli/main.ts), as an operator runs
 * it. The rate table is shared with the other files: this one uses pairs nobody pays in (NOK, DKK, PLN; audit.test.ts sets ISK).
 */
let ddb: MerchantsDb;
let dir: string;
let localFile: string;
let operatorApi: OperatorApiStandIn;

beforeAll(async () => {
  ddb = await merchantsDb();
  dir = mkdtempSync(join(tmpdir(), 'payplane-fx-cli-'));
  localFile = join(dir, 'local.json');
  // `fx set` calls the operator API (SigV4, the CLI's local key), `fx list` reads the table.
  operatorApi = await startOperatorApi({ deps: { merchants: ddb.deps }, credentials: { local: 'local' }, principal: FINANCE });
  writeFileSync(
    localFile,
    JSON.stringify({
      apiUrl: operatorApi.url,
      region: ddb.region,
      stage: 'local',
      restApiId: 'localapi',
      endpoints: { dynamodb: ddb.endpoint, apigateway: 'http://127.0.0.1:1' },
      tables: { main: ddb.tableName },
    }),
  );
}, 60_000);
afterAll(async () => {
  await operatorApi?.stop();
  rmSync(dir, { recursive: true, force: true });
  await ddb?.stop();
});

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), env: { [LOCAL_FILE_ENV]: localFile, USER: 'finance' } };
  const code = await main(argv, io);
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('payplane fx set', () => {
  it('stores the base rate and the markup apart, with its effective time and who set it', async () => {
    // Act
    const { code, stdout } = await run('fx', 'set', 'NOK', 'USD', '0.0935', '--markup-bps', '150', '--effective-at', '2026-03-01T00:00:00Z', '--json');
    // Assess
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      object: 'fx_rate',
      rate: { from: 'NOK', to: 'USD', rate: '0.0935', markup_bps: 150, effective_at: '2026-03-01T00:00:00.000Z', set_by: FINANCE, set_at: expect.any(String) },
      applied_rate: '0.0920975',
      created: true,
    });
    expect(await rateInForce(ddb.deps, 'NOK', 'USD', new Date('2026-03-01T00:00:00Z'))).toMatchObject({ rate: '0.0935', markup_bps: 150 });
    expect(await rateInForce(ddb.deps, 'NOK', 'USD', new Date('2026-02-28T23:59:59Z'))).toBeUndefined();
  });

  it('takes effect now by default; the rate in force is the latest at or before a time; rates are history', async () => {
    await run('fx', 'set', 'DKK', 'USD', '0.145', '--effective-at', '2026-04-01T00:00:00Z');
    const { code, stdout } = await run('fx', 'set', 'DKK', 'USD', '0.1460');
    expect(code).toBe(0);
    expect(stdout).toMatch(/Set the DKK→USD rate on the local cloud .*: 1 DKK = 0\.146 USD, markup 0 bps \(merchants get 0\.146\), effective 20\d\d-/);
    expect(await rateInForce(ddb.deps, 'DKK', 'USD', new Date('2026-05-01T00:00:00Z'))).toMatchObject({ rate: '0.145' });
    expect(await rateInForce(ddb.deps, 'DKK', 'USD', new Date(Date.now() + 1000))).toMatchObject({ rate: '0.146' });
    // The same rate again at the same time: nothing changes; another one there: refused, with the fix.
    expect((await run('fx', 'set', 'DKK', 'USD', '0.14500', '--effective-at', '2026-04-01T00:00:00Z')).stdout).toContain('was already set');
    const changed = await run('fx', 'set', 'DKK', 'USD', '0.2', '--effective-at', '2026-04-01T00:00:00Z');
    expect(changed.code).toBe(1);
    expect(changed.stderr).toContain('A DKK→USD rate effective at 2026-04-01T00:00:00.000Z is already set (0.145');
    expect(changed.stderr).toContain('later --effective-at');
  });

  it.each([
    [['fx', 'set', 'PLN', 'USD', '0,25'], "Invalid 'rate': got \"0,25\""],
    [['fx', 'set', 'PLN', 'USD', '0'], 'greater than zero'],
    [['fx', 'set', 'PLN', 'USD', '0.1234567890123'], '13 significant digits'],
    [['fx', 'set', 'PLN', 'XXX', '0.25'], "Invalid 'to': got \"XXX\""],
    [['fx', 'set', 'PLN', 'PLN', '1'], 'the same as'],
    [['fx', 'set', 'PLN', 'USD', '0.25', '--markup-bps', '20000'], "Invalid 'markup_bps': got \"20000\""],
    [['fx', 'set', 'PLN', 'USD', '0.25', '--effective-at', '2026-04-01 10:00'], "Invalid 'effective_at': got \"2026-04-01 10:00\""],
    [['fx', 'set', 'PLN', 'USD'], "'fx set' takes 3 arguments, got 2 (PLN USD), e.g. payplane fx set EUR USD 1.0845"],
  ])('exits 2 naming the field, the value and the fix: %j', async (argv, message) => {
    const { code, stderr } = await run(...argv);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(await rateInForce(ddb.deps, 'PLN', 'USD', new Date('2100-01-01T00:00:00Z'))).toBeUndefined();
  });
});

describe('payplane fx list', () => {
  it("lists one pair's history, and the whole table with the demo rates", async () => {
    await run('fx', 'set', 'NOK', 'USD', '0.094', '--effective-at', '2026-06-01T00:00:00Z');
    const pair = JSON.parse((await run('fx', 'list', 'NOK', 'USD', '--json')).stdout);
    expect(pair.map((r: { rate: string }) => r.rate)).toEqual(['0.0935', '0.094']);
    const { code, stdout } = await run('fx', 'list');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^PAIR +RATE +MARKUP_BPS +EFFECTIVE_AT +SET_BY$/m);
    expect(stdout).toMatch(/^EUR\/USD +1\.0845 +100 +2026-01-01T00:00:00\.000Z +seed:demo-rates$/m);
    expect(stdout).toMatch(/^NOK\/USD +0\.094 +0 +2026-06-01T00:00:00\.000Z +arn:aws:sts::000000000000:assumed-role\/PayplaneFinance\/finance$/m);
  });
});
