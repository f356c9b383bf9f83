import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Actor, AuditAction } from './context';

/**
 * The audit trail's data model (docs/audit.md): one hash chain per merchant (`merchant:<mch_id>`) and one for the
 * platform (`platform`), in the main table.
 *
 *   entry  pk AUDIT#<chain>  sk SEQ#<seq, 12 digits>   the AuditEntry below, and its `hash`
 *   head   pk AUDIT#<chain>  sk HEAD                   { seq, hash, updated_at }, gsi2 AUDIT_HEADS / <chain>
 *
 * An entry's `hash` is the SHA-256 (hex) of the RFC 8785 canonical JSON of every attribute of the entry but its
 * keys and the hash itself (STORAGE_ATTRIBUTES), so an attribute added, changed or removed later breaks it.
 */
export const PLATFORM_CHAIN = 'platform';
export const ZERO_HASH = '0'.repeat(64);
export const AUDIT_HEADS_INDEX_PK = 'AUDIT_HEADS';
/** Attributes of the stored item that are not the entry's content: never hashed, never shown. */
const STORAGE_ATTRIBUTES = new Set(['pk', 'sk', 'hash']);

export const chainOf = (merchantId: string | undefined) => (merchantId === undefined ? PLATFORM_CHAIN : `merchant:${merchantId}`);
export const auditPk = (chain: string) => `AUDIT#${chain}`;
export const entryKey = (chain: string, seq: number) => ({ pk: auditPk(chain), sk: `SEQ#${String(seq).padStart(12, '0')}` });
export const headKey = (chain: string) => ({ pk: auditPk(chain), sk: 'HEAD' });

/**
 * `aud_<seq, 12 digits><12 random base62>`: the seq in the id makes `starting_after=<id>` one Query (the chain's
 * partition from that seq), and ids sort as the chain does.
 */
export const auditEventId = (seq: number, random: string) => `aud_${String(seq).padStart(12, '0')}${random}`;
export const AUDIT_EVENT_ID = /^aud_(\d{12})[A-Za-z0-9]{12}$/;
export const seqOfId = (id: string) => Number(AUDIT_EVENT_ID.exec(id)![1]);

export interface AuditEntry {
  object: 'audit_event';
  id: string;
  chain: string;
  /** 1-based, no gaps. */
  seq: number;
  /** The previous entry's hash; ZERO_HASH for seq 1. */
  prev_hash: string;
  action: AuditAction;
  actor: Actor;
  merchant_id?: string;
  target: { type: string; id: string };
  request_id: string;
  created_at: string;
  /** Masked (mask.ts). */
  before?: unknown;
  after?: unknown;
}

export interface StoredEntry extends AuditEntry {
  hash: string;
}

export interface ChainHead {
  chain: string;
  seq: number;
  hash: string;
  updated_at: string;
}

/** The entry's content as stored: every attribute but the keys and the hash. */
export function contentOf(item: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(item).filter(([name]) => !STORAGE_ATTRIBUTES.has(name)));
}

/** SHA-256 hex of the RFC 8785 (JCS) canonical JSON of the entry's content. */
export function hashEntry(item: Record<string, unknown>): string {
  const text = canonicalize(contentOf(item));
  if (text === undefined) throw new Error('An audit entry must be a JSON object.');
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export function entryItem(entry: AuditEntry): StoredEntry & { pk: string; sk: string } {
  return { ...entryKey(entry.chain, entry.seq), ...entry, hash: hashEntry(entry as unknown as Record<string, unknown>) };
}

export function headItem(head: ChainHead) {
  return { ...headKey(head.chain), type: 'audit_head', ...head, gsi2pk: AUDIT_HEADS_INDEX_PK, gsi2sk: head.chain };
}
