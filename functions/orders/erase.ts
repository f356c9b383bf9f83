import type { AuditContext } from '../audit/context';
import { InternalError } from '../commons/errors';
import type { MerchantDeps } from '../merchants/repository';

/**
 * PLACEHOLDER (session 6, strand operator): the retention strand writes erasure (`payer.erased`, commitAudited)
 * with this exact signature; the operator route POST /operator/orders/{id}/erase_payer calls it. Until it is merged
 * the route answers 500 not_implemented.
 */
export async function erasePayer(deps: Pick<MerchantDeps, 'db' | 'tableName'>, input: { orderId: unknown }, by: AuditContext): Promise<unknown> {
  void deps;
  void by;
  throw new InternalError('not_implemented', `Erasing the payer of order ${String(input.orderId)} is not implemented yet (functions/orders/erase.ts).`);
}
