#!/usr/bin/env node
// The operator CLI (`npx payplane`). TypeScript runs through tsx, with the repo's tsconfig
// whatever the working directory; the commands live in cli/main.ts.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
