import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { render, SPEC_FILE } from '../../openapi/generate';

describe('docs/openapi.json', () => {
  it('is what the generator builds from the validators now (run `npm run openapi` and commit it)', () => {
    expect(readFileSync(SPEC_FILE, 'utf8')).toBe(render());
  });

  it('is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator)', async () => {
    const validator = new Validator();
    const result = await validator.validate(JSON.parse(readFileSync(SPEC_FILE, 'utf8')));
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('names every response object\'s required fields and refuses unknown ones', () => {
    const spec = JSON.parse(readFileSync(SPEC_FILE, 'utf8'));
    for (const [name, schema] of Object.entries<{ type?: string; required?: string[]; additionalProperties?: unknown }>(spec.components.schemas)) {
      if (schema.type !== 'object') continue;
      expect(schema.additionalProperties, name).toBe(false);
      expect(schema.required?.length, name).toBeGreaterThan(0);
    }
  });
});
