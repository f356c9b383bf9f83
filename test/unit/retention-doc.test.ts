import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { docRow, ITEM_TYPES } from '../../functions/commons/retention';

/**
 * docs/data.md's retention table is the registry (functions/commons/retention.ts) written out: every row is an
 * entry, every entry a row, cell by cell, so that neither can change alone.
 */
const doc = readFileSync(resolve(import.meta.dirname, '../../docs/data.md'), 'utf8');

/** The rows of the first table whose header starts with "| Item |", as cells (`\|` inside a cell kept as `|`). */
function tableRows(markdown: string): string[][] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.startsWith('| Item |'));
  if (start < 0) return [];
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim().replace(/\\\|/g, '|'));
    rows.push(cells);
  }
  return rows;
}

describe('docs/data.md and the item-type registry', () => {
  const rows = tableRows(doc);

  it('the doc has the table', () => {
    expect(rows.length, 'docs/data.md has no table starting with "| Item |"').toBeGreaterThan(0);
  });

  it('every registry entry has its row, cell by cell', () => {
    const byName = new Map(rows.map((r) => [r[0], r]));
    for (const t of ITEM_TYPES) {
      const expected = docRow(t);
      const row = byName.get(expected[0]!);
      expect(row, `docs/data.md has no row for ${t.name}; add: | ${expected.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`).toBeDefined();
      expect(row, `docs/data.md's row for ${t.name} differs from functions/commons/retention.ts`).toEqual(expected);
    }
  });

  it('every row is a registry entry, once', () => {
    const names = rows.map((r) => r[0]);
    expect(names.filter((n, i) => names.indexOf(n) !== i), 'rows listed twice').toEqual([]);
    const known = new Set(ITEM_TYPES.map((t) => `\`${t.name}\``));
    expect(names.filter((n) => !known.has(n!)), 'rows with no entry in functions/commons/retention.ts').toEqual([]);
  });

  it('every TTL entry names its attribute and bound; the others neither', () => {
    for (const t of ITEM_TYPES) {
      if (t.goes === 'ttl') expect([t.name, typeof t.ttlAttribute, (t.maxTtlSeconds ?? 0) > 0]).toEqual([t.name, 'string', true]);
      else expect([t.name, t.ttlAttribute, t.maxTtlSeconds]).toEqual([t.name, undefined, undefined]);
    }
  });
});
