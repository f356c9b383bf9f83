import { request } from 'node:http';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { operatorCall, OperatorApiError } from '../../cli/operator-client';
import type { MerchantCreated } from '../../functions/operator/operations';
import { call, cloud, newMerchant, operatorEndpoint, orderBody, payplane } from './support';

/**
 * The operator API (/operator/…, AWS_IAM) through the local API Gateway: SigV4 verified against the principal's
 * secret, execute-api:Invoke checked against its policies, and the principal handed to the handler.
 */
const OPERATOR_ARN = /^arn:aws:sts::\d{12}:assumed-role\/PayplaneOperator\/operator$/;

/** An operator call that must be refused: the refusal's status, code and message. */
async function refused(credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) {
  const error = await operatorCall<MerchantCreated>({ ...operatorEndpoint(), credentials }, 'merchants create', { body: { name: 'Never made' } }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(OperatorApiError);
  return error as OperatorApiError;
}

/** Signs a POST of `signedBody` as the operator, then sends `sentBody` (a body changed on the way). */
async function signedPost(path: string, signedBody: string, sentBody: string): Promise<{ status: number; body: any }> {
  const c = cloud();
  const url = new URL(`${c.url}${path}`);
  const signer = new SignatureV4({ credentials: c.operatorCredentials, region: c.region, service: 'execute-api', sha256: Hash.bind(null, 'sha256') });
  const signed = await signer.sign({ method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, query: {}, headers: { host: url.host, 'content-type': 'application/json' }, body: signedBody });
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { ...signed.headers, 'content-length': String(Buffer.byteLength(sentBody)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(sentBody);
  });
}

describe('the operator API refuses', () => {
  it('an unsigned request, as API Gateway does (its MISSING_AUTHENTICATION_TOKEN response), running nothing', async () => {
    const res = await call('POST', '/operator/merchants', { body: { name: 'Unsigned' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
    expect(res.body.error).toMatchObject({ code: 'route_not_found', message: expect.stringContaining('without a SigV4 signature') });
  });

  it('a merchant key: an API key is no IAM signature', async () => {
    const res = await call('POST', '/operator/merchants', { key: cloud().demo?.secretKey ?? 'sk_test_x', body: { name: 'Bearer' } });
    expect(res.status).toBe(403);
    expect(res.headers.get('x-amzn-errortype')).toBe('IncompleteSignatureException');
  });

  it("a request signed with the wrong secret, and an unknown access key, with AWS's messages", async () => {
    const { accessKeyId } = cloud().operatorCredentials;
    const wrongSecret = await refused({ accessKeyId, secretAccessKey: 'not-the-secret' });
    const unknownKey = await refused({ accessKeyId: 'AKIANOBODY0000000000', secretAccessKey: 'x' });
    expect(wrongSecret.status).toBe(403);
    expect(wrongSecret.message).toContain('The request signature we calculated does not match the signature you provided.');
    expect(unknownKey.status).toBe(403);
    expect(unknownKey.message).toContain('The security token included in the request is invalid.');
  });

  it('a body changed after it was signed', async () => {
    const res = await signedPost('/operator/merchants', JSON.stringify({ name: 'Signed' }), JSON.stringify({ name: 'Swapped' }));
    expect(res.status).toBe(403);
    expect(res.body.error.message).toContain('signature we calculated does not match');
  });

  it('a principal whose policies grant no execute-api:Invoke on the route, naming it and the method ARN', async () => {
    const c = cloud();
    const error = await refused(c.uninvitedCredentials);
    expect(error.status).toBe(403);
    expect(error.code).toBe('access_denied');
    expect(error.message).toMatch(
      new RegExp(`User: arn:aws:sts::\\d{12}:assumed-role/[^ ]+ is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:${c.region}:\\d{12}:${c.restApiId}/${c.stage}/POST/operator/merchants`),
    );
  });
});

describe('the operator, signed with its own credentials', () => {
  it('creates a merchant through the CLI, whose key then works on the merchant API', async () => {
    const made = await payplane('merchants', 'create', '--name', 'Operator API merchant', '--json');
    expect(made.code, made.stderr).toBe(0);
    const created = JSON.parse(made.stdout) as MerchantCreated;
    expect(created).toMatchObject({ object: 'merchant', id: expect.stringMatching(/^mch_/), secret_key: expect.stringMatching(/^sk_test_/) });
    expect((await call('GET', '/v1/orders', { key: created.secret_key })).status).toBe(200);
  });

  it('reaches the handler as the principal AWS authenticated: an FX rate records its ARN, not a name the client sent', async () => {
    const set = await payplane('fx', 'set', 'HUF', 'CZK', '0.0617', '--effective-at', '2026-02-01T00:00:00Z', '--json');
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout).rate.set_by).toMatch(OPERATOR_ARN);
    const again = await payplane('fx', 'set', 'HUF', 'CZK', '0.0617', '--effective-at', '2026-02-01T00:00:00Z');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('was already set');
    const list = await payplane('fx', 'list', 'HUF', 'CZK', '--json');
    expect(JSON.parse(list.stdout).map((r: { set_by: string }) => r.set_by)).toContainEqual(expect.stringMatching(OPERATOR_ARN));
  });

  it('erases a payer through the CLI (payers erase --order): the order shows none, the merchant’s trail names the operator', async () => {
    const merchant = await newMerchant('Erasure E2E');
    const order = await call('POST', '/v1/orders', { key: merchant.key, body: orderBody({ payer: { name: 'Jane Doe', email: 'jane@example.com' } }) });
    expect(order.status, order.text).toBe(201);
    const erased = await payplane('payers', 'erase', '--order', order.body.id, '--json');
    expect(erased.code, erased.stderr).toBe(0);
    expect(JSON.parse(erased.stdout)).toMatchObject({ erased: true });
    const shown = await call('GET', `/v1/orders/${order.body.id}`, { key: merchant.key });
    expect(shown.body.payer).toBeNull();
    expect(shown.text).not.toContain('jane@example.com');
    const trail = await call('GET', '/v1/audit_events?action=payer.erased', { key: merchant.key });
    expect(trail.body.data).toHaveLength(1);
    expect(trail.body.data[0].actor).toEqual({ type: 'operator', name: 'Payplane operator' });
    const again = await payplane('payers', 'erase', '--order', order.body.id);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('erased already');
    const unknown = await payplane('payers', 'erase', '--order', 'ord_nobody');
    expect(unknown.code).toBe(1);
  });
});
