import { seal } from '../commons/crypto';
import { merchantDepsFromEnv } from '../merchants/deps';
import { operatorHandler, type OperatorDeps } from '../operator/operations';

let deps: OperatorDeps | undefined;

/** PUT /operator/merchants/{id}/payouts: the only operator route that seals (a bank account, purpose bank_account). */
export const handler = operatorHandler('OperatorPayouts', () => (deps ??= { merchants: { ...merchantDepsFromEnv(), seal } }));
