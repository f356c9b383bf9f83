import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSpec } from './spec';

/** `npm run openapi`: writes docs/openapi.json (commit it; test/unit/openapi.test.ts fails when it is stale). */
export const SPEC_FILE = join(import.meta.dirname, '..', 'docs', 'openapi.json');
export const render = () => `${JSON.stringify(buildSpec(), null, 2)}\n`;

if (process.argv[1] && import.meta.filename === process.argv[1]) writeFileSync(SPEC_FILE, render());
