import { describe, expect, it } from 'vitest';
import { UsagePlans } from '../../local/apigateway-usage';

/**
 * The local cloud's throttling with a hand-driven clock: exact counts for "burst, then rate", the most
 * specific MethodSetting per method, and one bucket per key of a usage plan.
 */
function plans(clock: { now: number }) {
  return new UsagePlans(
    'api1',
    'dev',
    'AUTHORIZER',
    [
      { resourcePath: '/*', httpMethod: '*', throttle: { rateLimit: 1000, burstLimit: 1000 } },
      { resourcePath: '/checkout/{id}', httpMethod: 'GET', throttle: { rateLimit: 2, burstLimit: 3 } },
    ],
    {
      apiKeys: [
        { id: 'k1', value: 'payplane-usage-mch_one', enabled: true, createdDate: 0 },
        { id: 'k2', value: 'payplane-usage-mch_two', enabled: true, createdDate: 0 },
        { id: 'k3', value: 'payplane-usage-mch_off', enabled: false, createdDate: 0 },
      ],
      usagePlans: [
        { id: 'p1', name: 'payplane-dev-merchants', throttle: { rateLimit: 1, burstLimit: 2 }, apiStages: [{ apiId: 'api1', stage: 'dev' }], keys: ['k1', 'k2', 'k3'] },
      ],
    },
    undefined,
    () => clock.now,
  );
}

const admitted = (attempt: () => void) => {
  try {
    attempt();
    return 'ok';
  } catch (error) {
    return (error as { type: string }).type;
  }
};

describe('local throttling', () => {
  it('a method bucket admits its burst at once, then its rate per second', () => {
    const clock = { now: 0 };
    const u = plans(clock);
    const get = () => admitted(() => u.admitMethod('/checkout/{id}', 'GET'));
    expect([get(), get(), get(), get()]).toEqual(['ok', 'ok', 'ok', 'THROTTLED']);
    clock.now = 499; // 2 per second: 0.998 of a token
    expect(get()).toBe('THROTTLED');
    clock.now = 1000; // 2 tokens
    expect([get(), get(), get()]).toEqual(['ok', 'ok', 'THROTTLED']);
    clock.now = 60_000; // refills up to the burst, never beyond
    expect([get(), get(), get(), get()]).toEqual(['ok', 'ok', 'ok', 'THROTTLED']);
  });

  it('each method has its own bucket: the most specific setting, and other methods only the stage default', () => {
    const u = plans({ now: 0 });
    for (let i = 0; i < 3; i++) u.admitMethod('/checkout/{id}', 'GET');
    expect(admitted(() => u.admitMethod('/checkout/{id}', 'GET'))).toBe('THROTTLED');
    expect(admitted(() => u.admitMethod('/checkout/{id}', 'POST'))).toBe('ok');
    expect(admitted(() => u.admitMethod('/v1/balance', 'GET'))).toBe('ok');
  });

  it("each merchant's key spends its own bucket of the plan; unknown or disabled keys are INVALID_API_KEY", () => {
    const u = plans({ now: 0 });
    const call = (key?: string) => admitted(() => u.admitKey(key, '/v1/balance', 'GET'));
    expect([call('payplane-usage-mch_one'), call('payplane-usage-mch_one'), call('payplane-usage-mch_one')]).toEqual(['ok', 'ok', 'THROTTLED']);
    expect([call('payplane-usage-mch_two'), call('payplane-usage-mch_two')]).toEqual(['ok', 'ok']);
    expect([call('payplane-usage-mch_off'), call('payplane-usage-nobody'), call(undefined)]).toEqual(['INVALID_API_KEY', 'INVALID_API_KEY', 'INVALID_API_KEY']);
  });
});
