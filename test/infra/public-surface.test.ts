import { afterAll, describe, expect, it } from 'vitest';
import type { FunctionId } from '../../lib/payplane-stack';
import { STAGES } from '../../lib/stage-config';
import { cleanUp, logicalId, synth } from './template';

/** Issue 7: what the public functions may do, and where public URLs come from. */
afterAll(cleanUp);

/** Functions that present orders or build public URLs (every route behind api(), and the hosted checkout). */
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
];

describe.each(STAGES)('%s stage', (stage) => {
  const s = () => synth(stage);
  const variables = (id: FunctionId) => s().template.toJSON().Resources[logicalId(s().stack.functions[id].fn)].Properties.Environment.Variables;

  it('gives every function that builds public URLs the stage’s invoke URL as PUBLIC_BASE_URL (finding 10)', () => {
    const restApi = logicalId(s().stack.api.restApi);
    for (const id of PUBLIC_URL_BUILDERS) {
      expect(variables(id).PUBLIC_BASE_URL, id).toEqual({
        'Fn::Join': ['', ['https://', { Ref: restApi }, `.execute-api.${s().stack.region}.`, { Ref: 'AWS::URLSuffix' }, `/${stage}`]],
      });
    }
    // The others build none: they do not get it.
    for (const id of ['Authorizer', 'ExpireOrders', 'ReconcilePayments', 'SandboxNotify', 'SandboxNotifier'] as const) {
      expect(variables(id).PUBLIC_BASE_URL, id).toBeUndefined();
    }
  });
});
