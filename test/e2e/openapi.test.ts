import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SPEC_FILE } from '../../openapi/generate';
import { cloud } from './support';

const spec = JSON.parse(readFileSync(SPEC_FILE, 'utf8'));

describe('the OpenAPI document', () => {
  it('lists every /v1 route of the synthesized template, and only those', () => {
    // Prepare: the routes the local cloud serves, read from the template.
    const routes = cloud().routes.filter((r) => r.path.startsWith('/v1/')).map((r) => `${r.method} ${r.path}`).sort();
    // Act
    const documented = Object.entries<Record<string, unknown>>(spec.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
    // Assess
    expect(documented).toEqual(routes);
  });

  it('is served at GET /v1/openapi.json without an API key, as committed', async () => {
    const res = await fetch(`${cloud().url}/v1/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(spec);
  });
});
