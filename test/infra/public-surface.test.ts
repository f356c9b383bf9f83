import { afterAll, describe, expect, it } from 'vitest';
import type { FunctionId } from '../../lib/payplane-stack';
import { STAGES } from '../../lib/stage-config';
import { LOCAL_ONLY_ENVIRONMENT } from '../../local/lambda';
import { actionsOf, cleanUp, logicalId, references, roleStatements, synth, type Statement } from './template';

/** Issue 7: what the public functions may do, and where public URLs come from. */
afterAll(cleanUp);

/**
 * Functions that present orders or build public URLs: every route behind api(), the hosted checkout, and every
 * function that changes an order (the expiry sweep, the reconciler, the channel's notifications), whose events show
 * the order's checkout_url (changes/writer.ts).
 */
const PUBLIC_URL_BUILDERS: FunctionId[] = [
  'CreateOrder',
  'ListOrders',
  'GetOrder',
  'CloseOrder',
  'ConfirmOrder',
  'CaptureOrder',
  'CreateRefund',
  'GetRefund',
  'ListRefunds',
  'GetBalance',
  'Checkout',
  'ExpireOrders',
  'ReconcilePayments',
  'SandboxNotify', // the sweeps and the channel's results write events, which show checkout_url
  // api() reads PUBLIC_BASE_URL for every route; the endpoints API also decides by it whether loopback URLs are allowed.
  'CreateWebhookEndpoint',
  'ListWebhookEndpoints',
  'GetWebhookEndpoint',
  'UpdateWebhookEndpoint',
  'DeleteWebhookEndpoint',
  'RollWebhookEndpointSecret',
  'ListEvents',
  'GetEvent',
  'ResendEvent',
  'RecoverWebhookEndpoint',
];

describe.each(STAGES)('%s stage', (stage) => {
  const s = () => synth(stage);
  const variables = (id: FunctionId) => s().template.toJSON().Resources[logicalId(s().stack.functions[id].fn)].Properties.Environment.Variables;

  it('never enables a local-only setting: no template carries PAYPLANE_LOCAL_ALLOW_LOOPBACK_WEBHOOKS (issue 9 §3)', () => {
    // Only the local cloud sets these, at run time (local/lambda.ts): in a template they would let a
    // deployed deliverer call loopback addresses (in a Lambda, 127.0.0.1:9001 is the Runtime API).
    const template = JSON.stringify(s().template.toJSON());
    const names = Object.keys(LOCAL_ONLY_ENVIRONMENT);
    expect(names).toContain('PAYPLANE_LOCAL_ALLOW_LOOPBACK_WEBHOOKS');
    for (const name of names) expect(template.includes(name), name).toBe(false);
    for (const [id, r] of Object.entries(s().template.findResources('AWS::Lambda::Function'))) {
      const variables = (r.Properties.Environment?.Variables ?? {}) as Record<string, unknown>;
      expect(Object.keys(variables).filter((k) => k.startsWith('PAYPLANE_LOCAL_')), id).toEqual([]);
    }
  });

  it('gives every function that builds public URLs the stage’s invoke URL as PUBLIC_BASE_URL (finding 10)', () => {
    const restApi = logicalId(s().stack.api.restApi);
    for (const id of PUBLIC_URL_BUILDERS) {
      expect(variables(id).PUBLIC_BASE_URL, id).toEqual({
        'Fn::Join': ['', ['https://', { Ref: restApi }, `.execute-api.${s().stack.region}.`, { Ref: 'AWS::URLSuffix' }, `/${stage}`]],
      });
    }
    // The others build none: they do not get it.
    for (const id of ['Authorizer', 'SandboxNotifier'] as const) {
      expect(variables(id).PUBLIC_BASE_URL, id).toBeUndefined();
    }
  });

  describe('public functions hold only what they use (finding 13)', () => {
    const PUBLIC: FunctionId[] = ['Checkout', 'SandboxNotify', 'SandboxNotifier'];
    const main = () => logicalId(s().stack.mainTable);
    const key = () => logicalId(s().stack.key);
    const tableStatements = (id: FunctionId) => roleStatements(s(), id).filter((st) => references(st, main()) && actionsOf(st).some((a) => a.startsWith('dynamodb:')));
    /** KMS statements the function may call itself (not only through DynamoDB). */
    const directKeyStatements = (id: FunctionId) =>
      roleStatements(s(), id).filter((st) => references(st, key()) && !st.Condition?.StringEquals?.['kms:ViaService']);

    /** The one Query a public function may send: the exchange rate in force (FXRATE#<from>#<to>), when the checkout confirms a cross-border payment. */
    const fxRateQuery = (st: Statement) => actionsOf(st).join() === 'dynamodb:Query' && JSON.stringify(st.Condition) === JSON.stringify({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['FXRATE#*'] } });

    it.each(PUBLIC)('%s: reads items by key and puts or updates them, never DeleteItem, BatchWriteItem or a Query (but of the FX rate table)', (id) => {
      const actions = tableStatements(id).filter((st) => !fxRateQuery(st)).flatMap(actionsOf);
      expect(actions).toContain('dynamodb:GetItem');
      for (const action of actions) expect(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], id).toContain(action);
    });

    it.each(PUBLIC)('%s: no access to the API key partitions (dynamodb:LeadingKeys)', (id) => {
      for (const st of tableStatements(id).filter((st) => !fxRateQuery(st))) {
        expect(st.Condition).toEqual({ 'ForAllValues:StringNotLike': { 'dynamodb:LeadingKeys': ['APIKEY#*'] } });
      }
    });

    it('Checkout: may only seal with purpose "card" on the CMK, and never call kms:Decrypt itself (the payer stays sealed)', () => {
      const statements: Statement[] = directKeyStatements('Checkout');
      expect(statements).toHaveLength(1);
      expect(actionsOf(statements[0]!)).toEqual(['kms:GenerateDataKey']);
      expect(statements[0]!.Condition).toEqual({ StringEquals: { 'kms:EncryptionContext:purpose': ['card'] } });
    });

    it('SandboxNotify and SandboxNotifier call no action on the CMK themselves', () => {
      expect(directKeyStatements('SandboxNotify')).toEqual([]);
      expect(directKeyStatements('SandboxNotifier')).toEqual([]);
    });

    it('the API routes keep full access (the idempotency table releases keys with DeleteItem)', () => {
      const idem = logicalId(s().stack.idempotencyTable);
      const deletes = roleStatements(s(), 'CreateOrder').filter((st) => references(st, idem)).flatMap(actionsOf);
      expect(deletes).toContain('dynamodb:DeleteItem');
    });
  });
});
