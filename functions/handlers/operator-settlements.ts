import { SFNClient } from '@aws-sdk/client-sfn';
import { operatorHandler, type OperatorDeps } from '../operator/operations';

let deps: OperatorDeps | undefined;

/** POST /operator/settlement_runs: starts the settlement state machine; the CLI watches the execution itself. */
export const handler = operatorHandler('OperatorSettlements', () => {
  const stateMachineArn = process.env.SETTLEMENT_STATE_MACHINE_ARN;
  if (!stateMachineArn) throw new Error('Environment variable SETTLEMENT_STATE_MACHINE_ARN is not set for this function');
  deps ??= { settlement: { sfn: new SFNClient({}), stateMachineArn } };
  return deps;
});
