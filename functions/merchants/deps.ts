import { dynamo } from '../commons/clients';
import { required } from '../commons/config';
import type { MerchantDeps } from './repository';

/** Deps for code running in Lambda: the shared document client and TABLE_NAME from the environment. */
export function merchantDepsFromEnv(): MerchantDeps {
  return { db: dynamo(), tableName: required('TABLE_NAME') };
}
