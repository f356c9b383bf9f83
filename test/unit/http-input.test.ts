import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_BODY_DEPTH, nestedDeeperThan } from '../../functions/http/api';
import { canonicalJson } from '../../functions/http/idempotency';
import { runs } from '../deep';

/** Nested arrays `depth` deep, built without recursion: [[[…]]]. */
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

/** The recursive definition canonicalJson had; the iterative one must agree with it on every shallow body. */
function recursiveCanonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(recursiveCanonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${recursiveCanonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

describe('body nesting depth (issue 7 finding 7)', () => {
  it('allows 32 levels and refuses 33, objects and arrays alike', () => {
    expect(nestedDeeperThan(nested(MAX_BODY_DEPTH), MAX_BODY_DEPTH)).toBe(false);
    expect(nestedDeeperThan(nested(MAX_BODY_DEPTH + 1), MAX_BODY_DEPTH)).toBe(true);
    expect(nestedDeeperThan('{"a":'.repeat(33) + '1' + '}'.repeat(33), MAX_BODY_DEPTH)).toBe(true);
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    expect(nestedDeeperThan(JSON.stringify({ s: '['.repeat(100), t: '"{{{{\\"'.repeat(50) }), MAX_BODY_DEPTH)).toBe(false);
  });

  it('answers for a 30,000-level body without overflowing the stack', () => {
    expect(nestedDeeperThan(nested(30_000), MAX_BODY_DEPTH)).toBe(true);
  });

  it('agrees with the depth JSON.parse sees', () => {
    const depthOf = (v: unknown): number => (v && typeof v === 'object' ? 1 + Math.max(0, ...Object.values(v).map(depthOf)) : 0);
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 8 }), (value, limit) => {
        const raw = JSON.stringify(value);
        expect(nestedDeeperThan(raw, limit)).toBe(depthOf(JSON.parse(raw)) > limit);
      }),
      { numRuns: runs(300, 5_000) },
    );
  });
});

describe('canonicalJson (the idempotency fingerprint body)', () => {
  it('gives what the recursive definition gave, so stored fingerprints still match', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        expect(canonicalJson(value)).toBe(recursiveCanonical(value));
      }),
      { numRuns: runs(300, 5_000) },
    );
  });

  it('ignores key order and keeps prototype names as plain keys', () => {
    const a = JSON.parse('{"b":1,"__proto__":{"x":[1,{"constructor":2,"toString":3}]},"a":null}');
    const b = JSON.parse('{"a":null,"__proto__":{"x":[1,{"toString":3,"constructor":2}]},"b":1}');
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).toBe('{"__proto__":{"x":[1,{"constructor":2,"toString":3}]},"a":null,"b":1}');
  });

  it('walks a value 30,000 levels deep without recursion', () => {
    const deep = JSON.parse(nested(30_000));
    expect(canonicalJson(deep)).toBe(nested(30_000));
  });
});
