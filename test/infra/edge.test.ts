import { afterAll, describe, expect, it } from 'vitest';
import { ROUTE_SCOPES } from '../../functions/merchants/scopes';
import { STAGE_SETTINGS, STAGES } from '../../lib/stage-config';
import { cleanUp, logicalId, synth } from './template';

afterAll(cleanUp);

/** The edge: per-merchant usage plans, per-method limits on the public routes, the WAF web ACL, route scopes. */
describe.each(STAGES)('stage %s', (stage) => {
  const s = () => synth(stage);
  const settings = STAGE_SETTINGS[stage];
  const resources = () => s().template.toJSON().Resources as Record<string, { Type: string; Properties: any }>;
  const methods = () =>
    s().stack.api.restApi.methods.map((m) => ({ route: `${m.httpMethod} ${m.resource.path}`, props: resources()[logicalId(m)]!.Properties }));

  it('the API key comes from the authorizer, and every merchant route needs one; public routes need none', () => {
    expect(s().template.findResources('AWS::ApiGateway::RestApi')).toSatisfy((apis: object) =>
      Object.values(apis).every((a: any) => a.Properties.ApiKeySourceType === 'AUTHORIZER'),
    );
    for (const { route, props } of methods()) {
      expect(props.ApiKeyRequired === true, route).toBe(props.AuthorizationType === 'CUSTOM');
    }
  });

  it("the default usage plan limits each merchant to the stage's default, on this API stage", () => {
    const { template, stack } = s();
    template.resourceCountIs('AWS::ApiGateway::UsagePlan', 1);
    template.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      UsagePlanName: `payplane-${stage}-merchants`,
      Throttle: { RateLimit: settings.throttling.merchant.rateLimit, BurstLimit: settings.throttling.merchant.burstLimit },
      ApiStages: [{ ApiId: { Ref: logicalId(stack.api.restApi) }, Stage: { Ref: logicalId(stack.api.restApi.deploymentStage) } }],
    });
    // Keys are created per merchant at run time (CreateApiKey), never in the template.
    template.resourceCountIs('AWS::ApiGateway::ApiKey', 0);
  });

  it('each public method has its own method-level limit, lower than the merchant routes share', () => {
    const stageProps = resources()[logicalId(s().stack.api.restApi.deploymentStage)]!.Properties;
    const settingsByRoute = new Map<string, any>(
      stageProps.MethodSettings.map((m: any) => [`${m.HttpMethod} ${m.ResourcePath === '/*' ? '*' : m.ResourcePath.slice(1).replaceAll('~1', '/')}`, m]),
    );
    const publicRoutes = methods().filter((m) => m.props.AuthorizationType === 'NONE');
    expect(publicRoutes.length).toBeGreaterThan(0);
    for (const { route } of publicRoutes) {
      const group = route.split(' ')[1]!.split('/')[1]!;
      expect(settingsByRoute.get(route), route).toMatchObject({
        ThrottlingRateLimit: settings.throttling.publicRoutes[group]!.rateLimit,
        ThrottlingBurstLimit: settings.throttling.publicRoutes[group]!.burstLimit,
      });
      expect(settings.throttling.publicRoutes[group]!.burstLimit).toBeLessThan(settings.throttling.method.burstLimit);
    }
  });

  it('THROTTLED is a 429 rate_limit_error with a fixed Retry-After; INVALID_API_KEY a 403 permission_error', () => {
    const response = (type: string) =>
      Object.values(s().template.findResources('AWS::ApiGateway::GatewayResponse', { Properties: { ResponseType: type } }))[0]!.Properties;
    const throttled = response('THROTTLED');
    expect(throttled.StatusCode).toBe('429');
    expect(throttled.ResponseParameters['gatewayresponse.header.Retry-After']).toBe("'1'");
    const body = JSON.parse(throttled.ResponseTemplates['application/json'].replaceAll('$context.requestId', 'req-1'));
    expect(body.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limited', request_id: 'req-1' });
    expect(body.error.message).toContain('Retry after 1 s');
    const invalidKey = response('INVALID_API_KEY');
    expect(invalidKey.StatusCode).toBe('403');
    expect(JSON.parse(invalidKey.ResponseTemplates['application/json'].replaceAll('$context.requestId', 'r')).error.type).toBe('permission_error');
  });

  it('a REGIONAL WAFv2 web ACL on the stage caps requests per IP on /checkout/ and /channels/, and runs AWS managed rules', () => {
    const { template, stack } = s();
    template.resourceCountIs('AWS::WAFv2::WebACL', 1);
    const acl = Object.values(template.findResources('AWS::WAFv2::WebACL'))[0]!.Properties;
    expect(acl.Scope).toBe('REGIONAL');
    expect(acl.DefaultAction).toEqual({ Allow: {} });
    const rateRules = acl.Rules.filter((r: any) => r.Statement.RateBasedStatement);
    expect(
      rateRules.map((r: any) => {
        const rate = r.Statement.RateBasedStatement;
        return [rate.ScopeDownStatement.ByteMatchStatement.SearchString, rate.AggregateKeyType, rate.EvaluationWindowSec, rate.Limit];
      }),
    ).toEqual([
      [`/${stage}/checkout/`, 'IP', 300, settings.waf.checkoutPerIp],
      [`/${stage}/channels/`, 'IP', 300, settings.waf.channelsPerIp],
    ]);
    for (const rule of rateRules) {
      expect(rule.Statement.RateBasedStatement.Limit).toBeGreaterThanOrEqual(10); // WAF's minimum
      expect(rule.Action.Block.CustomResponse).toMatchObject({ ResponseCode: 429, CustomResponseBodyKey: 'rate_limited' });
    }
    expect(JSON.parse(acl.CustomResponseBodies.rate_limited.Content).error.type).toBe('rate_limit_error');
    expect(acl.Rules.map((r: any) => r.Statement.ManagedRuleGroupStatement?.Name).filter(Boolean)).toEqual([
      'AWSManagedRulesAmazonIpReputationList',
      'AWSManagedRulesCommonRuleSet',
      'AWSManagedRulesKnownBadInputsRuleSet',
    ]);
    // The association names the stage's ARN and the ACL.
    const association = Object.values(template.findResources('AWS::WAFv2::WebACLAssociation'))[0]!.Properties;
    expect(JSON.stringify(association.ResourceArn)).toContain(`/restapis/`);
    expect(JSON.stringify(association.ResourceArn)).toContain(logicalId(stack.api.restApi.deploymentStage));
    expect(association.WebACLArn).toEqual({ 'Fn::GetAtt': [logicalId(stack.api.webAcl), 'Arn'] });
  });

  it('every merchant route declares its scope in ROUTE_SCOPES, and ROUTE_SCOPES names no route that does not exist', () => {
    const merchantRoutes = methods()
      .filter((m) => m.props.AuthorizationType === 'CUSTOM')
      .map((m) => m.route)
      .sort();
    expect(Object.keys(ROUTE_SCOPES).sort()).toEqual(merchantRoutes);
  });
});
