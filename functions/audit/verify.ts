import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { AUDIT_HEADS_INDEX_PK, entryKey, hashEntry, headKey, ZERO_HASH, type ChainHead } from './chain';
import { walkChain, type ReadDeps } from './read';

/**
 * Recomputes a chain from seq 1 and names its first broken link (docs/audit.md § Verifying):
 * - `hash_mismatch`: the entry's content does not hash to its stored hash (it was edited);
 * - `seq_gap`: an entry is missing (deleted), named by the seq it had;
 * - `prev_hash_mismatch`: the entry does not link to the one before (that one was rewritten, hash and all);
 * - `head_mismatch`: the head names another last entry than the chain has (the tail was cut, or the head edited);
 * - `signed_head_mismatch`: the chain lacks the entry a signed head names (functions/audit/heads.ts): the chain was
 *   cut or rewritten after it was signed. Rewriting from an edit onwards, head included, passes every other check:
 *   only a head signed outside the table's reach catches it.
 */
export type BrokenLink = {
  problem: 'hash_mismatch' | 'seq_gap' | 'prev_hash_mismatch' | 'head_mismatch' | 'signed_head_mismatch';
  seq: number;
  /** The entry at that seq, when there is one. */
  entryId?: string;
  message: string;
};

export interface SignedHead {
  chain: string;
  seq: number;
  hash: string;
}

export type ChainVerdict = { chain: string; ok: true; entries: number; head?: { seq: number; hash: string } } | { chain: string; ok: false; entries: number; broken: BrokenLink };

export async function verifyChain(deps: ReadDeps, chain: string, options: { signedHead?: SignedHead } = {}): Promise<ChainVerdict> {
  let expected = 1;
  let prevHash = ZERO_HASH;
  let signedSeen: string | undefined;
  const signed = options.signedHead?.chain === chain ? options.signedHead : undefined;
  const fail = (broken: BrokenLink): ChainVerdict => ({ chain, ok: false, entries: expected - 1, broken });
  let head: ChainHead | undefined;
  // Changes keep appending while we read: walk, read the head, and walk on while the head is ahead (bounded).
  for (let pass = 0; pass < 5; pass++) {
    for await (const item of walkChain(deps, chain, expected - 1)) {
      const seq = item.seq as number;
      const id = item.id as string;
      if (seq !== expected || item.sk !== entryKey(chain, seq).sk || item.chain !== chain) {
        const missing = seq > expected && item.sk === entryKey(chain, seq).sk;
        return fail({
          problem: missing ? 'seq_gap' : 'hash_mismatch',
          seq: expected,
          ...(missing ? {} : { entryId: id }),
          message: missing
            ? `Entry seq ${expected} of chain ${chain} is missing: the next entry is seq ${seq} (${id}). It was deleted.`
            : `The entry stored as ${String(item.sk)} of chain ${chain} says it is seq ${String(seq)} of chain ${String(item.chain)} (${id}): it was moved or edited.`,
        });
      }
      const hash = hashEntry(item);
      if (hash !== item.hash) {
        return fail({ problem: 'hash_mismatch', seq, entryId: id, message: `Entry seq ${seq} (${id}) of chain ${chain} hashes to ${hash}, not to its stored hash ${String(item.hash)}: it was edited.` });
      }
      if (item.prev_hash !== prevHash) {
        return fail({
          problem: 'prev_hash_mismatch',
          seq,
          entryId: id,
          message: `Entry seq ${seq} (${id}) of chain ${chain} links to ${String(item.prev_hash)}, but entry seq ${seq - 1} hashes to ${prevHash}: entry seq ${seq - 1} was rewritten, or this one was.`,
        });
      }
      if (signed && seq === signed.seq) signedSeen = hash;
      prevHash = hash;
      expected++;
    }
    const { Item } = await deps.db.send(new GetCommand({ TableName: deps.tableName, Key: headKey(chain), ConsistentRead: true }));
    head = Item as ChainHead | undefined;
    if ((head?.seq ?? 0) <= expected - 1) break;
  }
  const last = expected - 1;
  if ((head?.seq ?? 0) !== last || (head && head.hash !== prevHash)) {
    return fail({
      problem: 'head_mismatch',
      seq: head?.seq ?? 0,
      message: head
        ? `The head of chain ${chain} names seq ${head.seq} (${head.hash}), but the chain ends at seq ${last}${last ? ` (${prevHash})` : ''}: ${head.seq > last ? 'entries at its end were deleted' : 'the head was edited'}.`
        : `Chain ${chain} has ${last} entries but no head: the head was deleted.`,
    });
  }
  if (signed && signedSeen !== signed.hash) {
    return fail({
      problem: 'signed_head_mismatch',
      seq: signed.seq,
      message:
        signedSeen === undefined
          ? `The signed head names seq ${signed.seq} of chain ${chain}, but the chain ends at seq ${last}: its tail was cut after it was signed.`
          : `The signed head names seq ${signed.seq} of chain ${chain} with hash ${signed.hash}, but that entry hashes to ${signedSeen}: the chain was rewritten after it was signed.`,
    });
  }
  return { chain, ok: true, entries: last, ...(head ? { head: { seq: head.seq, hash: head.hash } } : {}) };
}

/** Every chain that has a head (gsi2 AUDIT_HEADS), in chain order. */
export async function listChains(deps: ReadDeps): Promise<string[]> {
  const chains: string[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await deps.db.send(
      new QueryCommand({
        TableName: deps.tableName,
        IndexName: 'gsi2',
        KeyConditionExpression: 'gsi2pk = :pk',
        ExpressionAttributeValues: { ':pk': AUDIT_HEADS_INDEX_PK },
        ExclusiveStartKey: start,
      }),
    );
    chains.push(...(page.Items ?? []).map((i) => i.gsi2sk as string));
    start = page.LastEvaluatedKey;
  } while (start);
  return chains;
}

/** Verifies each chain; `signedHeads` (the latest signed document's) are matched to their chains. */
export async function verifyChains(deps: ReadDeps, chains: string[], options: { signedHeads?: SignedHead[] } = {}): Promise<ChainVerdict[]> {
  const verdicts: ChainVerdict[] = [];
  for (const chain of chains) verdicts.push(await verifyChain(deps, chain, { signedHead: options.signedHeads?.find((h) => h.chain === chain) }));
  return verdicts;
}
