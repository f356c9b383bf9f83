#!/usr/bin/env node
// The operator CLI (`npx payplane`). TypeScript runs through tsx, with the repo's tsconfig
// whatever the working directory; the commands live in cli/main.ts.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

// The SDK's Node 20 end-of-support notice is for us, not for an operator creating a merchant.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
