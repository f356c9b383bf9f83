import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { OPERATOR_ROUTES, operatorPath } from '../../functions/operator/routes';
import { LocalIam, OPERATOR_CREDENTIALS, SIGNATURE_MISMATCH_MESSAGE, verifySigV4, type SignedRequest } from '../../local/iam';
import { LocalStack } from '../../local/template';

/** The operator API's SigV4 check (local/iam.ts verifySigV4, which the local API Gateway's AWS_IAM methods use) and its route table. */
const SECRETS: Record<string, string> = { AKIAOPERATOR: 'right-secret' };
const NOW = new Date('2026-12-02T08:00:00Z');

async function signed(body: string, options: { secret?: string; at?: Date; path?: string } = {}): Promise<SignedRequest> {
  const signer = new SignatureV4({ credentials: { accessKeyId: 'AKIAOPERATOR', secretAccessKey: options.secret ?? 'right-secret' }, region: 'us-east-1', service: 'execute-api', sha256: Hash.bind(null, 'sha256') });
  const path = options.path ?? '/test/operator/merchants/mch_1/fees';
  const out = await signer.sign(
    { method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', port: 3000, path, query: { x: 'y' }, headers: { host: '127.0.0.1:3000', 'content-type': 'application/json' }, body },
    { signingDate: options.at ?? NOW },
  );
  const headers = Object.fromEntries(Object.entries(out.headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method: 'PUT', path, query: new URLSearchParams({ x: 'y' }), headers, body: Buffer.from(body) };
}

const verify = (request: SignedRequest) => verifySigV4(request, 'execute-api', (key) => SECRETS[key], NOW);

describe('verifySigV4', () => {
  it("accepts the SDK's own signature, and names the access key", async () => {
    expect(await verify(await signed('{"fees":{}}'))).toEqual({ ok: true, accessKeyId: 'AKIAOPERATOR' });
  });

  it('refuses the wrong secret, a changed body, path or query, and another service', async () => {
    const good = await signed('{"fees":{}}');
    const mismatch = { ok: false, problem: 'mismatch', message: SIGNATURE_MISMATCH_MESSAGE };
    expect(await verify(await signed('{"fees":{}}', { secret: 'wrong' }))).toEqual(mismatch);
    expect(await verify({ ...good, body: Buffer.from('{"fees":{"card":{}}}') })).toEqual(mismatch);
    expect(await verify({ ...good, path: '/test/operator/merchants/mch_2/fees' })).toEqual(mismatch);
    expect(await verify({ ...good, query: new URLSearchParams({ x: 'z' }) })).toEqual(mismatch);
    expect(await verifySigV4(good, 'lambda', (key) => SECRETS[key], NOW)).toEqual(mismatch);
  });

  it("answers a missing header, an API key, an unknown access key and a stale date with AWS's messages", async () => {
    const good = await signed('{}');
    expect(await verify({ ...good, headers: {} })).toMatchObject({ ok: false, problem: 'missing', message: 'Missing Authentication Token' });
    expect(await verify({ ...good, headers: { ...good.headers, authorization: 'Bearer sk_test_x' } })).toMatchObject({ ok: false, problem: 'incomplete' });
    expect(await verifySigV4(good, 'execute-api', () => undefined, NOW)).toMatchObject({ ok: false, problem: 'unknown_key', message: 'The security token included in the request is invalid.' });
    const old = await verify(await signed('{}', { at: new Date(NOW.getTime() - 16 * 60_000) }));
    expect(old).toMatchObject({ ok: false, problem: 'expired', message: expect.stringMatching(/^Signature expired: 20261202T074400Z is now earlier than 20261202T074500Z/) });
  });
});

describe('the operator principal', () => {
  it('docs/operator-policy.json: Invoke on the operator routes, no table writes, no sealing, no StartExecution', async () => {
    const stack = new LocalStack({
      Resources: {
        Api: { Type: 'AWS::ApiGateway::RestApi', Properties: { Name: 'payplane-test' } },
        Stage: { Type: 'AWS::ApiGateway::Stage', Properties: { RestApiId: { Ref: 'Api' }, StageName: 'test' } },
        MainTable: { Type: 'AWS::DynamoDB::Table', Properties: { KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }] } },
      },
    }, { stackName: 'Payplane-test' });
    const iam = new LocalIam(stack, { log: () => {} });
    const operator = iam.principalOf({ authorization: `AWS4-HMAC-SHA256 Credential=${OPERATOR_CREDENTIALS.accessKeyId}/20261202/us-east-1/execute-api/aws4_request` })!;
    const api = `arn:aws:execute-api:${stack.region}:${stack.account}:${stack.restApiId('Api')}/test`;
    const table = `arn:aws:dynamodb:${stack.region}:${stack.account}:table/${stack.tableName('MainTable')}`;
    const allowed = async (action: string, resource: string) => (await iam.authorize(operator, [{ action, resource }])).allowed;
    expect(await allowed('execute-api:Invoke', `${api}/POST/operator/merchants`)).toBe(true);
    expect(await allowed('execute-api:Invoke', `${api}/GET/v1/orders`)).toBe(false);
    expect(await allowed('execute-api:Invoke', `arn:aws:execute-api:${stack.region}:${stack.account}:${stack.restApiId('Api')}/prod/POST/operator/merchants`)).toBe(false);
    for (const action of ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem', 'dynamodb:DeleteItem']) expect(await allowed(action, table), action).toBe(false);
    expect(await allowed('dynamodb:GetItem', table)).toBe(true);
  });
});

describe('the operator routes', () => {
  it('live under /operator/, one per command, and fill in the id URI-encoded', () => {
    expect(Object.values(OPERATOR_ROUTES).every((r) => r.resource.startsWith('/operator/'))).toBe(true);
    expect(new Set(Object.values(OPERATOR_ROUTES).map((r) => `${r.method} ${r.resource}`)).size).toBe(Object.keys(OPERATOR_ROUTES).length);
    expect(operatorPath('merchants fees set', 'mch_1')).toBe('/operator/merchants/mch_1/fees');
    expect(operatorPath('keys revoke', 'key_a/b')).toBe('/operator/keys/key_a%2Fb/revoke');
    expect(() => operatorPath('keys roll', '')).toThrow(/needs an id/);
  });
});
