import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { GetPublicKeyCommand, SignCommand, type KMSClient } from '@aws-sdk/client-kms';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { BatchGetCommand, type BatchGetCommandOutput, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import canonicalize from 'canonicalize';
import { headKey } from './chain';
import { listChains } from './verify';

/**
 * Signed chain heads (docs/audit.md § Signed heads). A hash chain alone does not stop someone who can write the
 * table: they can rewrite from an edit onwards, or cut the tail and roll the head back. So once a day every chain's
 * head `{chain, seq, hash}` goes into one document, signed with a KMS key only the signer may use, and written to
 * an S3 bucket with Object Lock. `audit verify` then holds each chain to the latest signed document, whose
 * signature it checks with the key's public half (never with anything read from the table).
 *
 * The object (`audit-heads/<YYYY-MM-DD>/<signed_at>.json`) is `{ document, signature }`: `signature` is the base64
 * DER ECDSA P-256 signature (KMS ECDSA_SHA_256) of the SHA-256 of the RFC 8785 canonical JSON of `document`.
 * Anyone verifies it with the public key alone:
 *   verify('sha256', Buffer.from(canonicalize(document)), { key: spkiDer, format: 'der', type: 'spki' }, Buffer.from(signature, 'base64'))
 */

export const AUDIT_HEADS_PREFIX = 'audit-heads/';
export const AUDIT_HEADS_FORMAT = 'payplane.audit-heads.v1';
/** gsi2 partition of the head items (COMMON data model: gsi2pk 'AUDIT_HEADS', gsi2sk <chain>). */

export interface ChainHead {
  chain: string;
  seq: number;
  hash: string;
}

/** What is signed. `key_id` is the signing key's ARN; verifiers check it is the key they trust, and verify with that key. */
export interface HeadsDocument {
  format: typeof AUDIT_HEADS_FORMAT;
  signed_at: string;
  chains: ChainHead[];
  key_id: string;
  /**
   * Chains whose table no longer holds what the previous document signed (the entry at its seq is gone or has
   * another hash): their entry in `chains` stays the previously signed one, so the break is never signed away.
   * Only present when there is one.
   */
  breaks?: { chain: string; signed_seq: number; signed_hash: string; head_seq: number | null }[];
}

/** The stored object. */
export interface SignedHeads {
  document: HeadsDocument;
  /** base64 DER ECDSA signature of SHA-256(RFC 8785 JSON of `document`). */
  signature: string;
  signing_algorithm: 'ECDSA_SHA_256';
}

/** A signed document that fails its checks: forged, altered, or signed with another key. */
export class SignedHeadsError extends Error {
  constructor(
    message: string,
    readonly objectKey?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export interface LockSettings {
  mode: 'COMPLIANCE' | 'GOVERNANCE';
  retentionDays: number;
}

export interface SignerDeps {
  db: Pick<DynamoDBDocumentClient, 'send'>;
  kms: Pick<KMSClient, 'send'>;
  s3: Pick<S3Client, 'send'>;
  tableName: string;
  /** The signing key (AUDIT_HEADS_KEY_ARN). */
  keyId: string;
  /** AUDIT_HEADS_BUCKET. */
  bucket: string;
  /** The bucket's default retention, stated on every object (AUDIT_HEADS_LOCK_MODE, AUDIT_HEADS_RETENTION_DAYS). */
  lock: LockSettings;
  now?: () => Date;
}

/** Every chain's head: gsi2 `AUDIT_HEADS` lists the chains, the table (consistent reads) gives seq and hash. */
export async function listChainHeads(deps: Pick<SignerDeps, 'db' | 'tableName'>): Promise<ChainHead[]> {
  const keys = (await listChains(deps)).map(headKey);

  const heads: ChainHead[] = [];
  for (let i = 0; i < keys.length; i += 100) {
    let request: Record<string, { pk: string; sk: string }[]> | undefined = { [deps.tableName]: keys.slice(i, i + 100) };
    for (let attempt = 0; request && Object.keys(request).length; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
      const out: BatchGetCommandOutput = await deps.db.send(
        new BatchGetCommand({
          RequestItems: {
            [deps.tableName]: {
              Keys: request[deps.tableName]!,
              ConsistentRead: true,
              ProjectionExpression: 'pk, seq, #h',
              ExpressionAttributeNames: { '#h': 'hash' },
            },
          },
        }),
      );
      for (const item of out.Responses?.[deps.tableName] ?? []) {
        heads.push({ chain: String(item.pk).slice('AUDIT#'.length), seq: Number(item.seq), hash: String(item.hash) });
      }
      request = out.UnprocessedKeys?.[deps.tableName]?.Keys?.length
        ? { [deps.tableName]: out.UnprocessedKeys[deps.tableName]!.Keys as { pk: string; sk: string }[] }
        : undefined;
    }
  }
  return heads.sort((a, b) => (a.chain < b.chain ? -1 : a.chain > b.chain ? 1 : 0));
}

/** The bytes that are signed: RFC 8785 canonical JSON of the document. */
export function canonicalBytes(document: HeadsDocument): Buffer {
  const text = canonicalize(document);
  if (text === undefined) throw new Error('The heads document has no JSON form');
  return Buffer.from(text, 'utf8');
}

/** `audit-heads/<YYYY-MM-DD>/<ISO timestamp>.json`: keys sort as they were signed. */
export function objectKeyFor(signedAt: string): string {
  return `${AUDIT_HEADS_PREFIX}${signedAt.slice(0, 10)}/${signedAt}.json`;
}

/**
 * Lists every head, holds it to the previous signed document, signs the result and writes it, locked until the
 * bucket's default retention ends.
 *
 * Holding to the previous document is what makes "check against the latest" enough: someone who cuts a tail (or
 * rewrites a chain) after one signing must not have the next signing bless it. So for each chain the previous
 * document names, the entry at its signed seq must still be in the table with the signed hash; if not, the
 * chain keeps its previously signed head and the document lists it under `breaks` (and the run logs it).
 * Two runs never share a key (the timestamp has milliseconds); a locked version is never replaced anyway.
 */
export async function signAuditHeads(deps: SignerDeps & { log?: (message: string, fields: Record<string, unknown>) => void }): Promise<{ key: string; signed: SignedHeads }> {
  const current = await listChainHeads(deps);
  const previous = await newestValidSignedHeads({ ...deps, onInvalid: (error) => deps.log?.('signed audit heads document fails verification; skipped', { key: error.objectKey, error: error.message }) });
  const { chains, breaks } = previous ? await holdToPrevious(deps, current, previous.document) : { chains: current, breaks: [] };
  for (const b of breaks) deps.log?.('audit chain no longer holds its signed head', { ...b, previous: previous?.key });
  const signedAt = (deps.now?.() ?? new Date()).toISOString();
  // key_id is part of what is signed, so it must be known first: the configured key (an ARN from the stack).
  const document: HeadsDocument = { format: AUDIT_HEADS_FORMAT, signed_at: signedAt, chains, key_id: deps.keyId, ...(breaks.length ? { breaks } : {}) };
  const digest = createHash('sha256').update(canonicalBytes(document)).digest();
  const out = await deps.kms.send(new SignCommand({ KeyId: deps.keyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }));
  if (!out.Signature) throw new Error(`KMS Sign with ${deps.keyId} returned no signature`);
  const signed: SignedHeads = { document, signature: Buffer.from(out.Signature).toString('base64'), signing_algorithm: 'ECDSA_SHA_256' };
  const key = objectKeyFor(signedAt);
  const retainUntil = new Date(Date.parse(signedAt) + deps.lock.retentionDays * 86_400_000);
  await deps.s3.send(
    new PutObjectCommand({
      Bucket: deps.bucket,
      Key: key,
      Body: JSON.stringify(signed, null, 2),
      ContentType: 'application/json',
      ObjectLockMode: deps.lock.mode,
      ObjectLockRetainUntilDate: retainUntil,
      // S3 requires an integrity checksum with Object Lock headers.
      ChecksumAlgorithm: 'SHA256',
    }),
  );
  return { key, signed };
}

/** The current heads, each previously signed chain checked at its signed seq (one consistent BatchGet per 100). */
async function holdToPrevious(
  deps: Pick<SignerDeps, 'db' | 'tableName'>,
  current: ChainHead[],
  previous: HeadsDocument,
): Promise<{ chains: ChainHead[]; breaks: NonNullable<HeadsDocument['breaks']> }> {
  const found = new Map<string, string>();
  for (let i = 0; i < previous.chains.length; i += 100) {
    let keys: Record<string, unknown>[] | undefined = previous.chains.slice(i, i + 100).map((c) => ({ pk: `AUDIT#${c.chain}`, sk: `SEQ#${String(c.seq).padStart(12, '0')}` }));
    for (let attempt = 0; keys?.length; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
      const out: BatchGetCommandOutput = await deps.db.send(
        new BatchGetCommand({ RequestItems: { [deps.tableName]: { Keys: keys, ConsistentRead: true, ProjectionExpression: 'pk, sk, #h', ExpressionAttributeNames: { '#h': 'hash' } } } }),
      );
      for (const item of out.Responses?.[deps.tableName] ?? []) found.set(`${String(item.pk)}|${String(item.sk)}`, String(item.hash));
      keys = out.UnprocessedKeys?.[deps.tableName]?.Keys;
    }
  }
  const byChain = new Map(current.map((c) => [c.chain, c]));
  const breaks: NonNullable<HeadsDocument['breaks']> = [];
  for (const signed of previous.chains) {
    const hash = found.get(`AUDIT#${signed.chain}|SEQ#${String(signed.seq).padStart(12, '0')}`);
    if (hash === signed.hash) continue;
    breaks.push({ chain: signed.chain, signed_seq: signed.seq, signed_hash: signed.hash, head_seq: byChain.get(signed.chain)?.seq ?? null });
    byChain.set(signed.chain, signed);
  }
  const chains = [...byChain.values()].sort((a, b) => (a.chain < b.chain ? -1 : a.chain > b.chain ? 1 : 0));
  return { chains, breaks };
}

export interface VerifierDeps {
  s3: Pick<S3Client, 'send'>;
  kms: Pick<KMSClient, 'send'>;
  bucket: string;
  /** The signing key's ARN the verifier trusts (the stack output AuditHeadsKeyArn), never one a document names. */
  keyId: string;
}

/** Every signed document's object key, oldest first (keys sort as they were signed). */
export async function signedHeadsKeys(deps: Pick<VerifierDeps, 's3' | 'bucket'>): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: AUDIT_HEADS_PREFIX, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key?.endsWith('.json')) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

async function readVerified(deps: VerifierDeps, key: string, publicKey: KeyObject): Promise<HeadsDocument> {
  const object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
  return verifySignedHeads(await object.Body!.transformToString('utf8'), publicKey, deps.keyId, key);
}

/**
 * For the signer: the newest document that verifies. A newer one that does not (someone else wrote to the prefix)
 * is reported through `onInvalid` and skipped, so a forged object cannot stop the signing; `audit verify` fails on it.
 */
async function newestValidSignedHeads(deps: VerifierDeps & { onInvalid(error: SignedHeadsError): void }): Promise<{ key: string; document: HeadsDocument } | undefined> {
  const keys = await signedHeadsKeys(deps);
  if (!keys.length) return undefined;
  const publicKey = await signingPublicKey(deps);
  for (const key of keys.reverse()) {
    try {
      return { key, document: await readVerified(deps, key, publicKey) };
    } catch (error) {
      if (!(error instanceof SignedHeadsError)) throw error;
      deps.onInvalid(error);
    }
  }
  return undefined;
}

/** The signing key's public half, from KMS (GetPublicKey: DER SubjectPublicKeyInfo). */
export async function signingPublicKey(deps: Pick<VerifierDeps, 'kms' | 'keyId'>): Promise<KeyObject> {
  const out = await deps.kms.send(new GetPublicKeyCommand({ KeyId: deps.keyId }));
  if (!out.PublicKey) throw new Error(`KMS GetPublicKey for ${deps.keyId} returned no key`);
  return createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' });
}

/**
 * Parses a stored object and checks it: the format, the key it names, and the signature with `publicKey`.
 * Returns the document; throws SignedHeadsError naming what failed.
 */
export function verifySignedHeads(body: string, publicKey: KeyObject, expectedKeyId: string, objectKey?: string): HeadsDocument {
  const where = objectKey ? `s3 object ${objectKey}` : 'the signed heads document';
  let parsed: SignedHeads;
  try {
    parsed = JSON.parse(body) as SignedHeads;
  } catch {
    throw new SignedHeadsError(`${where} is not JSON.`, objectKey);
  }
  const doc = parsed?.document;
  if (!doc || doc.format !== AUDIT_HEADS_FORMAT || !Array.isArray(doc.chains) || typeof parsed.signature !== 'string') {
    throw new SignedHeadsError(`${where} is not a ${AUDIT_HEADS_FORMAT} document ({ document: { format, signed_at, chains, key_id }, signature }).`, objectKey);
  }
  if (parsed.signing_algorithm !== 'ECDSA_SHA_256') {
    throw new SignedHeadsError(`${where}: signing_algorithm is ${JSON.stringify(parsed.signing_algorithm)}; only ECDSA_SHA_256 is accepted.`, objectKey);
  }
  if (doc.key_id !== expectedKeyId) {
    throw new SignedHeadsError(`${where} names key ${doc.key_id}, not the audit heads key ${expectedKeyId}: it was not signed by this stage's signer.`, objectKey);
  }
  const ok = verify('sha256', canonicalBytes(doc), publicKey, Buffer.from(parsed.signature, 'base64'));
  if (!ok) throw new SignedHeadsError(`${where}: the signature does not match the document: it was altered after signing, or forged.`, objectKey);
  return doc;
}

/**
 * The latest signed document, verified against the trusted key's public half; undefined when nothing was signed
 * yet. A document that fails verification throws (SignedHeadsError): a verifier must never fall back to an
 * older one, which is what someone who can write the bucket's newest object would want.
 */
export async function latestVerifiedSignedHeads(deps: VerifierDeps): Promise<{ key: string; document: HeadsDocument } | undefined> {
  const key = (await signedHeadsKeys(deps)).at(-1);
  if (!key) return undefined;
  return { key, document: await readVerified(deps, key, await signingPublicKey(deps)) };
}

export type SignedHeadCheck =
  | { ok: true; signed: boolean }
  | {
      ok: false;
      broken: 'tail_cut';
      chain: string;
      /** The seq and hash the signed document holds for the chain. */
      lastSignedSeq: number;
      lastSignedHash: string;
      /** The highest seq found in the table now (0: no entry left). */
      found: number;
      signedAt: string;
    }
  | { ok: false; broken: 'signed_hash_mismatch'; chain: string; lastSignedSeq: number; lastSignedHash: string; foundHash: string; signedAt: string };

/**
 * Holds one chain's entries (as read from the table, any order) to the signed document: the entry at the signed
 * seq must exist with the signed hash. Missing → `tail_cut` (entries were deleted and the head rolled back);
 * present with another hash → `signed_hash_mismatch` (the chain was rewritten from that entry or earlier, hashes
 * recomputed). A chain the document does not name (created since) is `{ ok: true, signed: false }`. Run it after
 * the chain's own link check, which finds the first broken link within what is left.
 */
export function checkAgainstSignedHead(chain: string, entries: readonly { seq: number; hash: string }[], signed: HeadsDocument): SignedHeadCheck {
  const head = signed.chains.find((c) => c.chain === chain);
  if (!head) return { ok: true, signed: false };
  const at = entries.find((e) => e.seq === head.seq);
  const base = { chain, lastSignedSeq: head.seq, lastSignedHash: head.hash, signedAt: signed.signed_at };
  if (!at) return { ok: false, broken: 'tail_cut', ...base, found: entries.reduce((m, e) => Math.max(m, e.seq), 0) };
  if (at.hash !== head.hash) return { ok: false, broken: 'signed_hash_mismatch', ...base, foundHash: at.hash };
  return { ok: true, signed: true };
}

/** Chains the signed document names that the table no longer has at all (every entry and the head deleted). */
export function chainsMissingSince(signed: HeadsDocument, chainsNow: Iterable<string>): ChainHead[] {
  const now = new Set(chainsNow);
  return signed.chains.filter((c) => !now.has(c.chain));
}
