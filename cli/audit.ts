import { chainOf, PLATFORM_CHAIN } from '../functions/audit/chain';
import { listChains, verifyChains, type ChainVerdict, type SignedHead } from '../functions/audit/verify';
import { InvalidRequestError } from '../functions/commons/errors';
import type { Target } from './target';

/**
 * `payplane audit verify [--merchant <id>]`: recomputes the audit chains from seq 1 (functions/audit/verify.ts) and
 * names the first broken link of each. Without options: the platform's chain and every chain with a head (gsi2
 * AUDIT_HEADS); `--merchant`: that merchant's only.
 *
 * `signedHeads` is the hook for the latest signed heads document (functions/audit/heads.ts): each chain it names
 * must still hold the entry it signed, else the tail was cut or rewritten after signing.
 */
export interface AuditVerified {
  ok: boolean;
  chains: ChainVerdict[];
}

export async function auditVerify(target: Target, input: { merchantId?: unknown; signedHeads?: SignedHead[] }): Promise<AuditVerified> {
  const deps = { db: target.merchants.db, tableName: target.merchants.tableName };
  let chains: string[];
  if (input.merchantId !== undefined) {
    const id = String(input.merchantId);
    if (!/^mch_[A-Za-z0-9_-]{1,64}$/.test(id)) {
      throw new InvalidRequestError('parameter_invalid', `Invalid --merchant '${id}': merchant ids look like mch_ followed by letters and digits.`, { param: 'merchant' });
    }
    chains = [chainOf(id)];
  } else {
    // And the chains the signed heads name: a chain whose head was deleted is listed by nothing else.
    chains = [...new Set([PLATFORM_CHAIN, ...(await listChains(deps)), ...(input.signedHeads ?? []).map((h) => h.chain)])];
  }
  const verdicts = await verifyChains(deps, chains, { signedHeads: input.signedHeads });
  return { ok: verdicts.every((v) => v.ok), chains: verdicts };
}

/** One line per chain: OK with its count and head, or the first broken link. */
export function describeVerdict(v: ChainVerdict): string {
  if (v.ok) return `OK      ${v.chain}: ${v.entries} entr${v.entries === 1 ? 'y' : 'ies'}${v.head ? `, head seq ${v.head.seq} ${v.head.hash.slice(0, 16)}…` : ''}`;
  const b = v.broken;
  return `BROKEN  ${v.chain} at seq ${b.seq}${b.entryId ? ` (${b.entryId})` : ''}: ${b.problem}. ${b.message}`;
}
