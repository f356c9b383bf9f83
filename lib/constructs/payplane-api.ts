import { Duration, Lazy, RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { RETRY_AFTER_SECONDS } from '../../functions/commons/errors';
import { STAGE_SETTINGS, type Stage, type Throttle } from '../stage-config';
import { acknowledge } from './acknowledge';
import type { PayplaneFunction } from './payplane-function';

export interface PayplaneApiProps {
  /** The stage: API name `payplane-<stage>`, stage name `<stage>`, throttling and log retention. */
  readonly stage: Stage;
  /** The Lambda REQUEST authorizer every route uses. */
  readonly authorizer: PayplaneFunction;
  /**
   * Seconds API Gateway caches an authorizer decision per `Authorization` header value. A revoked key keeps
   * working for at most this long.
   * @default Duration.seconds(300)
   */
  readonly authorizerCacheTtl?: Duration;
}

/** HTTP methods the routes use. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One API Gateway-generated error, in our error shape (`{"error":{type,code,message,request_id}}`). */
interface GatewayError {
  /** Construct id of the gateway response. */
  readonly id: string;
  readonly responseType: apigw.ResponseType;
  /** @default - the status API Gateway uses for the response type */
  readonly statusCode?: string;
  readonly type: string;
  readonly code: string;
  /** A JSON string literal (already quoted) or `$context.error.messageString` (which API Gateway quotes). */
  readonly message: string;
  /** Extra response headers: name → API Gateway mapping expression (`'literal'`). */
  readonly headers?: Record<string, string>;
}

/**
 * Errors API Gateway produces before (or instead of) our Lambda handlers. The Lambda handlers produce the
 * same shape themselves; these make the few responses we do not control look the same. They stay English whatever
 * Accept-Language says: a gateway response cannot read the request's headers (docs/architecture.md, Localized errors).
 */
const GATEWAY_ERRORS: GatewayError[] = [
  {
    id: 'Unauthorized',
    responseType: apigw.ResponseType.UNAUTHORIZED,
    statusCode: '401',
    type: 'authentication_error',
    code: 'invalid_api_key',
    message: JSON.stringify(
      "Missing, malformed, unknown or revoked API key. Send your secret key as 'Authorization: Bearer sk_test_...'.",
    ),
  },
  {
    id: 'AccessDenied',
    responseType: apigw.ResponseType.ACCESS_DENIED,
    statusCode: '403',
    type: 'authentication_error',
    code: 'access_denied',
    // The authorizer never denies (it answers 401); what reaches this is an operator route's IAM refusal, whose
    // message names the principal and the method ARN ("User: arn:… is not authorized to perform: execute-api:Invoke…").
    message: '$context.error.messageString',
  },
  {
    // The merchant's usage plan bucket (or a public method's own bucket) is empty.
    id: 'Throttled',
    responseType: apigw.ResponseType.THROTTLED,
    statusCode: '429',
    type: 'rate_limit_error',
    code: 'rate_limited',
    message: JSON.stringify(
      `Too many requests. Retry after ${RETRY_AFTER_SECONDS} s with the same Idempotency-Key, and spread requests out; ` +
        'if your steady traffic needs more, ask support to raise your limit.',
    ),
    headers: { 'Retry-After': `'${RETRY_AFTER_SECONDS}'` },
  },
  {
    // The authorizer accepted the key, but its merchant has no API Gateway key in a usage plan of this stage.
    id: 'InvalidApiKey',
    responseType: apigw.ResponseType.INVALID_API_KEY,
    statusCode: '403',
    type: 'permission_error',
    code: 'merchant_not_provisioned',
    message: JSON.stringify(
      'This API key is valid, but its merchant is not provisioned for API access on this stage. Contact support with the request_id.',
    ),
  },
  {
    id: 'MissingAuthenticationToken',
    responseType: apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
    statusCode: '404',
    type: 'invalid_request_error',
    code: 'route_not_found',
    // API Gateway answers this type to an unsigned request on an AWS_IAM method (the operator routes) as well.
    message: JSON.stringify(
      'Unrecognized request URL or method. Check the path and method against the API reference. (Operator routes, /operator/…, also answer this to a request without a SigV4 signature.)',
    ),
  },
  {
    id: 'RequestTooLarge',
    responseType: apigw.ResponseType.REQUEST_TOO_LARGE,
    statusCode: '413',
    type: 'invalid_request_error',
    code: 'request_too_large',
    message: JSON.stringify('The request is too large. Send a smaller body.'),
  },
  {
    id: 'Default4xx',
    responseType: apigw.ResponseType.DEFAULT_4XX,
    type: 'invalid_request_error',
    code: 'bad_request',
    message: '$context.error.messageString',
  },
  {
    id: 'Default5xx',
    responseType: apigw.ResponseType.DEFAULT_5XX,
    type: 'api_error',
    code: 'internal_error',
    message: JSON.stringify(
      'Something went wrong on our side. Retry the request; if it keeps failing, contact support with the request_id.',
    ),
  },
];

/**
 * The public REST API (API Gateway v1): regional endpoint, one stage named after the stage, JSON access
 * logs, execution logs at ERROR level (never request bodies), X-Ray tracing, a parameter request validator,
 * gateway responses in our error shape, and a Lambda REQUEST authorizer on every merchant route (`addRoute`).
 *
 * Rate limits (docs/operations.md, "Rate limits"): every merchant route needs an API key that the
 * authorizer supplies (`apiKeySourceType: AUTHORIZER`, `usageIdentifierKey` = the merchant's API Gateway key),
 * so each merchant spends its own usage-plan bucket; each public route has its own method-level bucket; a
 * WAFv2 web ACL caps requests per IP on the public routes.
 */
export class PayplaneApi extends Construct {
  readonly restApi: apigw.RestApi;
  readonly accessLogs: LogGroup;
  readonly authorizer: apigw.RequestAuthorizer;
  /** The usage plan every merchant's API Gateway key joins unless an operator gives it its own. */
  readonly merchantsPlan: apigw.UsagePlan;
  readonly webAcl: wafv2.CfnWebACL;
  private readonly validator: apigw.RequestValidator;
  private readonly settings: (typeof STAGE_SETTINGS)[Stage];
  /** Method-level throttles of the public routes, rendered into the stage's MethodSettings. */
  private readonly publicMethodSettings: apigw.CfnStage.MethodSettingProperty[] = [];

  constructor(scope: Construct, id: string, props: PayplaneApiProps) {
    super(scope, id);
    const settings = STAGE_SETTINGS[props.stage];
    this.settings = settings;

    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: settings.logRetention,
      removalPolicy: settings.removalPolicy,
    });

    this.restApi = new apigw.RestApi(this, 'RestApi', {
      restApiName: `payplane-${props.stage}`,
      description: `Payplane public API (${props.stage})`,
      endpointTypes: [apigw.EndpointType.REGIONAL],
      // Clients cannot send an API Gateway key: the authorizer names the merchant's (usageIdentifierKey).
      apiKeySourceType: apigw.ApiKeySourceType.AUTHORIZER,
      // Execution logging needs the account-level CloudWatch role (AWS::ApiGateway::Account). It is shared by
      // every REST API in the account and region, so it is kept when a stage is destroyed.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: props.stage,
        description: `Payplane ${props.stage}`,
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogs),
        accessLogFormat: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: apigw.AccessLogField.contextRequestId(),
            extendedRequestId: apigw.AccessLogField.contextExtendedRequestId(),
            requestTime: apigw.AccessLogField.contextRequestTime(),
            ip: apigw.AccessLogField.contextIdentitySourceIp(),
            userAgent: apigw.AccessLogField.contextIdentityUserAgent(),
            httpMethod: apigw.AccessLogField.contextHttpMethod(),
            resourcePath: apigw.AccessLogField.contextResourcePath(),
            path: apigw.AccessLogField.contextPath(),
            status: apigw.AccessLogField.contextStatus(),
            responseLength: apigw.AccessLogField.contextResponseLength(),
            responseLatency: apigw.AccessLogField.contextResponseLatency(),
            integrationLatency: apigw.AccessLogField.contextIntegrationLatency(),
            merchantId: apigw.AccessLogField.contextAuthorizer('merchantId'),
            keyId: apigw.AccessLogField.contextAuthorizer('keyId'),
            authorizerError: apigw.AccessLogField.contextAuthorizerError(),
            errorType: apigw.AccessLogField.contextErrorResponseType(),
            errorMessage: apigw.AccessLogField.contextErrorMessage(),
            xrayTraceId: apigw.AccessLogField.contextXrayTraceId(),
          }),
        ),
        tracingEnabled: true,
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false, // full request/response logging would write card data and PII to CloudWatch
        metricsEnabled: true,
        throttlingRateLimit: settings.throttling.method.rateLimit,
        throttlingBurstLimit: settings.throttling.method.burstLimit,
      },
    });
    const cfnStage = this.restApi.deploymentStage.node.defaultChild as apigw.CfnStage;
    const stageDefaults = cfnStage.methodSettings;
    cfnStage.methodSettings = Lazy.any({
      produce: () => [...(Array.isArray(stageDefaults) ? stageDefaults : []), ...this.publicMethodSettings],
    });

    this.merchantsPlan = this.restApi.addUsagePlan('MerchantsPlan', {
      name: `payplane-${props.stage}-merchants`,
      description: 'Default per-merchant rate limit: one API Gateway key per merchant, shared by all its API keys',
      throttle: settings.throttling.merchant,
      apiStages: [{ api: this.restApi, stage: this.restApi.deploymentStage }],
    });

    this.webAcl = this.webAclFor(props.stage);

    // The stack declares its own `ApiUrl` output; drop the duplicate one RestApi adds by itself.
    this.restApi.node.tryRemoveChild('Endpoint');

    this.authorizer = new apigw.RequestAuthorizer(this, 'ApiKeyAuthorizer', {
      authorizerName: `payplane-${props.stage}-api-key`,
      handler: props.authorizer.fn,
      identitySources: [apigw.IdentitySource.header('Authorization')],
      resultsCacheTtl: props.authorizerCacheTtl ?? Duration.seconds(300),
    });

    // Bodies are validated by the handlers with zod (so errors name the offending field in our shape);
    // API Gateway validates the declared request parameters.
    this.validator = new apigw.RequestValidator(this, 'ParameterValidator', {
      restApi: this.restApi,
      requestValidatorName: 'parameters',
      validateRequestParameters: true,
      validateRequestBody: false,
    });

    for (const error of GATEWAY_ERRORS) {
      this.restApi.addGatewayResponse(error.id, {
        type: error.responseType,
        statusCode: error.statusCode,
        responseHeaders: {
          'Request-Id': 'context.requestId',
          'Content-Type': "'application/json'",
          ...error.headers,
        },
        templates: {
          'application/json':
            `{"error":{"type":"${error.type}","code":"${error.code}","message":${error.message},` +
            `"request_id":"$context.requestId"}}`,
        },
      });
    }

    acknowledge(
      this.restApi,
      'AwsSolutions-COG4',
      'Callers are merchant servers authenticating with secret API keys, not Cognito users: every method added ' +
        'with addRoute uses the Lambda REQUEST authorizer, which checks the sha256 of the key against the main ' +
        'table. Operator routes (addIamRoute, /operator/…) use AWS_IAM: operators are IAM principals of the ' +
        'account, and IAM (SigV4 + execute-api:Invoke) is what names them in the audit trail. Public routes (addPublicRoute: the payment channel\'s signed notifications, the payer\'s hosted ' +
        'checkout reached through its unguessable order id) have no Cognito ' +
        'equivalent either; each carries an AwsSolutions-APIG4 acknowledgement naming what authenticates it.',
    );
    acknowledge(
      this.restApi,
      'AwsSolutions-APIG2',
      'Request parameters are validated by API Gateway (the "parameters" validator); bodies are validated in ' +
        'the handlers with zod, which return our error shape naming the offending field (param). A gateway ' +
        'body model would answer the same mistakes with a generic BAD_REQUEST_BODY message instead.',
    );
    acknowledge(
      this.restApi,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      'This is the account-level role API Gateway uses to write execution logs for every REST API in the ' +
        'account and region; AWS documents this managed policy for it, and scoping it to this API would break ' +
        'logging of the other APIs that share the role.',
    );
  }

  /**
   * Adds `method path` → `fn` (AWS_PROXY), behind the authorizer. Path segments in braces become required
   * path parameters, checked by the request validator. Returns the method.
   */
  addRoute(method: HttpMethod, path: string, fn: PayplaneFunction): apigw.Method {
    return this.route(method, path, fn, {
      authorizer: this.authorizer,
      authorizationType: apigw.AuthorizationType.CUSTOM,
      // The merchant's usage plan throttles it; a merchant without an API Gateway key gets INVALID_API_KEY.
      apiKeyRequired: true,
    });
  }

  /**
   * Adds an operator route (`/operator/…`): AuthorizationType AWS_IAM, so API Gateway verifies the caller's SigV4
   * signature and its `execute-api:Invoke` on the method, and names the principal in requestContext.identity. No API
   * key (operators are no merchant: no usage plan); the stage's method throttle applies.
   */
  addIamRoute(method: HttpMethod, path: string, fn: PayplaneFunction): apigw.Method {
    if (!path.startsWith('/operator/')) {
      throw new Error(`IAM route ${method} ${path}: operator routes live under /operator/ (docs/operator-policy.json grants Invoke on /operator/* only).`);
    }
    return this.route(method, path, fn, { authorizationType: apigw.AuthorizationType.IAM, apiKeyRequired: false });
  }

  /**
   * Adds a route without the API key authorizer (authorizationType NONE), for callers that authenticate
   * inside the request, e.g. a payment channel's signed notification. `reason` says what authenticates the
   * caller instead; it becomes the route's cdk-nag acknowledgement (AwsSolutions-APIG4).
   */
  addPublicRoute(method: HttpMethod, path: string, fn: PayplaneFunction, reason: string): apigw.Method {
    const group = path.split('/')[1] ?? '';
    const limit: Throttle | undefined = this.settings.throttling.publicRoutes[group];
    if (!limit) {
      throw new Error(
        `Public route ${method} ${path} has no method-level throttle: add '${group}' to throttling.publicRoutes in ` +
          'lib/stage-config.ts, so a flood of it cannot spend the limits of other routes.',
      );
    }
    const route = this.route(method, path, fn, { authorizationType: apigw.AuthorizationType.NONE });
    this.publicMethodSettings.push({
      resourcePath: `/${path.replaceAll('/', '~1')}`,
      httpMethod: method,
      throttlingRateLimit: limit.rateLimit,
      throttlingBurstLimit: limit.burstLimit,
    });
    acknowledge(route, 'AwsSolutions-APIG4', reason);
    return route;
  }

  /**
   * REGIONAL web ACL on the stage: AWS managed rule groups (common rules, known bad inputs, IP reputation) and
   * per-IP rate-based rules on the public routes. Merchant routes are limited per merchant by the usage plan,
   * not per IP (one merchant's servers often share a NAT address).
   */
  private webAclFor(stage: Stage): wafv2.CfnWebACL {
    const visibility = (metricName: string): wafv2.CfnWebACL.VisibilityConfigProperty => ({
      cloudWatchMetricsEnabled: true,
      metricName,
      sampledRequestsEnabled: true,
    });
    const managed = (priority: number, name: string, excluded: string[] = []): wafv2.CfnWebACL.RuleProperty => ({
      name,
      priority,
      overrideAction: { none: {} },
      statement: {
        managedRuleGroupStatement: {
          vendorName: 'AWS',
          name,
          ruleActionOverrides: excluded.length ? excluded.map((rule) => ({ name: rule, actionToUse: { count: {} } })) : undefined,
        },
      },
      visibilityConfig: visibility(name),
    });
    const perIp = (priority: number, name: string, prefix: string, limit: number): wafv2.CfnWebACL.RuleProperty => ({
      name,
      priority,
      action: {
        block: {
          customResponse: {
            responseCode: 429,
            customResponseBodyKey: 'rate_limited',
            responseHeaders: [{ name: 'Retry-After', value: '60' }],
          },
        },
      },
      statement: {
        rateBasedStatement: {
          aggregateKeyType: 'IP',
          evaluationWindowSec: 300,
          limit,
          scopeDownStatement: {
            byteMatchStatement: {
              fieldToMatch: { uriPath: {} },
              positionalConstraint: 'STARTS_WITH',
              searchString: `/${stage}${prefix}`,
              textTransformations: [{ priority: 0, type: 'NONE' }],
            },
          },
        },
      },
      visibilityConfig: visibility(name),
    });
    const { checkoutPerIp, channelsPerIp } = this.settings.waf;
    const acl = new wafv2.CfnWebACL(this, 'WebAcl', {
      name: `payplane-${stage}-api`,
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: visibility(`payplane-${stage}-api`),
      customResponseBodies: {
        rate_limited: {
          contentType: 'APPLICATION_JSON',
          content: JSON.stringify({
            error: {
              type: 'rate_limit_error',
              code: 'rate_limited',
              message: 'Too many requests from your network address. Wait a minute before retrying.',
            },
          }),
        },
      },
      rules: [
        perIp(0, 'CheckoutPerIp', '/checkout/', checkoutPerIp),
        perIp(1, 'ChannelsPerIp', '/channels/', channelsPerIp),
        managed(2, 'AWSManagedRulesAmazonIpReputationList'),
        // Our own body limit is 64 KB (functions/http/api.ts); the group's 8 KB body rule would refuse larger orders.
        managed(3, 'AWSManagedRulesCommonRuleSet', ['SizeRestrictions_BODY']),
        managed(4, 'AWSManagedRulesKnownBadInputsRuleSet'),
      ],
    });
    const association = new wafv2.CfnWebACLAssociation(this, 'WebAclAssociation', {
      resourceArn: this.restApi.deploymentStage.stageArn,
      webAclArn: acl.attrArn,
    });
    association.node.addDependency(this.restApi.deploymentStage);
    return acl;
  }

  private route(method: HttpMethod, path: string, fn: PayplaneFunction, auth: Pick<apigw.MethodOptions, 'authorizer' | 'authorizationType' | 'apiKeyRequired'>): apigw.Method {
    const resource = this.restApi.root.resourceForPath(path);
    const pathParameters = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    return resource.addMethod(method, new apigw.LambdaIntegration(fn.fn, { allowTestInvoke: false }), {
      ...auth,
      requestValidator: this.validator,
      requestParameters: Object.fromEntries(pathParameters.map((p) => [`method.request.path.${p}`, true])),
      operationName: fn.node.id,
    });
  }

  /** The invoke URL of the stage, e.g. `https://abc.execute-api.us-east-1.amazonaws.com/dev/`. */
  get url(): string {
    return this.restApi.url;
  }
}
