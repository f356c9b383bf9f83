import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { ApiExchange } from '../../local/apigateway';
import { SPEC_FILE } from '../../openapi/generate';

/**
 * The contract check of the e2e tier: every response of a /v1 route that the local cloud sends, whichever test or
 * helper made the request, must validate against docs/openapi.json for its route and status. It hooks the local
 * API Gateway (ApiGatewayOptions.onResponse), not a test helper, so a new route or a test calling fetch directly
 * cannot skip it; a route or status the spec does not list is a failure too. Schemas compile once per
 * (route, status): the check costs microseconds per response.
 */
export class ContractCheck {
  private readonly spec = JSON.parse(readFileSync(SPEC_FILE, 'utf8'));
  private readonly ajv = new Ajv2020({ strict: false, allErrors: false });
  private readonly validators = new Map<string, ((body: unknown) => boolean) & { errors?: unknown[] | null }>();
  readonly failures: string[] = [];
  checked = 0;

  constructor() {
    addFormats.default(this.ajv);
    this.ajv.addSchema(this.spec, 'openapi.json');
  }

  /** ApiGatewayOptions.onResponse. */
  readonly record = (x: ApiExchange): void => {
    if (!x.resource?.startsWith('/v1/')) return; // the checkout's pages, the channel's notify and /operator are not in the spec
    this.checked++;
    const where = `${x.method} ${x.resource} → ${x.status}`;
    const operation = this.spec.paths[x.resource]?.[x.method.toLowerCase()];
    if (!operation) return this.fail(`${where}: the route is not in docs/openapi.json`);
    let response = operation.responses[x.status];
    if (!response) return this.fail(`${where}: the spec lists no response ${x.status} for it (openapi/spec.ts)`);
    let pointer = `#/paths/${escape(x.resource)}/${x.method.toLowerCase()}/responses/${x.status}`;
    if (response.$ref) {
      pointer = response.$ref;
      response = this.spec.components.responses[String(response.$ref).split('/').pop()!];
    }
    const type = x.contentType?.split(';')[0]?.trim() ?? '';
    if (!response.content?.[type]) return this.fail(`${where}: answered ${type || 'no Content-Type'}, the spec has ${Object.keys(response.content ?? {}).join(', ')}`);
    if (!/^application\/(.+\+)?json$/.test(type)) return; // CSV: its content type is what the spec can say of it
    const key = `${pointer}/content/${escape(type)}/schema`;
    let validate = this.validators.get(key);
    if (!validate) {
      validate = this.ajv.getSchema(`openapi.json${key}`) as typeof validate;
      this.validators.set(key, validate!);
    }
    let body: unknown;
    try {
      body = JSON.parse(x.body);
    } catch {
      return this.fail(`${where}: the body is not JSON`);
    }
    if (!validate!(body)) this.fail(`${where}: ${JSON.stringify(validate!.errors?.slice(0, 3))} in ${x.body.slice(0, 300)}`);
  };

  private fail(problem: string): void {
    if (this.failures.length < 50) this.failures.push(problem);
  }
}

const escape = (segment: string) => segment.replaceAll('~', '~0').replaceAll('/', '~1');
