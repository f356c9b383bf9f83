import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { STAGE_SETTINGS, type Stage } from '../stage-config';
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
}

/**
 * Errors API Gateway produces before (or instead of) our Lambda handlers. The Lambda handlers produce the
 * same shape themselves; these make the few responses we do not control look the same.
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
    message: JSON.stringify('This API key is not allowed to perform this request.'),
  },
  {
    id: 'MissingAuthenticationToken',
    responseType: apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
    statusCode: '404',
    type: 'invalid_request_error',
    code: 'route_not_found',
    message: JSON.stringify('Unrecognized request URL or method. Check the path and method against the API reference.'),
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
 * logs, execution logs at ERROR level (never request bodies), X-Ray tracing, stage-wide throttling, a
 * parameter request validator, gateway responses in our error shape, and a Lambda REQUEST authorizer on
 * every route (`addRoute`).
 */
export class PayplaneApi extends Construct {
  readonly restApi: apigw.RestApi;
  readonly accessLogs: LogGroup;
  readonly authorizer: apigw.RequestAuthorizer;
  private readonly validator: apigw.RequestValidator;

  constructor(scope: Construct, id: string, props: PayplaneApiProps) {
    super(scope, id);
    const settings = STAGE_SETTINGS[props.stage];

    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: settings.logRetention,
      removalPolicy: settings.removalPolicy,
    });

    this.restApi = new apigw.RestApi(this, 'RestApi', {
      restApiName: `payplane-${props.stage}`,
      description: `Payplane public API (${props.stage})`,
      endpointTypes: [apigw.EndpointType.REGIONAL],
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
        throttlingRateLimit: settings.throttling.rateLimit,
        throttlingBurstLimit: settings.throttling.burstLimit,
      },
    });

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
        'table. Public routes (addPublicRoute: the payment channel\'s signed notifications, the payer\'s hosted ' +
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
      'AwsSolutions-APIG3',
      'No WAFv2 web ACL in the foundation stage: every merchant method requires a secret API key checked by ' +
        'the authorizer, the public channel-notification route acts only on an HMAC-verified body, the public ' +
        'checkout routes act only on the one order named by their unguessable id, and ' +
        'stage-wide throttling caps the request rate. A web ACL (AWS managed rules and a rate-based rule) is a ' +
        'planned follow-up before live traffic.',
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
    });
  }

  /**
   * Adds a route without the API key authorizer (authorizationType NONE), for callers that authenticate
   * inside the request, e.g. a payment channel's signed notification. `reason` says what authenticates the
   * caller instead; it becomes the route's cdk-nag acknowledgement (AwsSolutions-APIG4).
   */
  addPublicRoute(method: HttpMethod, path: string, fn: PayplaneFunction, reason: string): apigw.Method {
    const route = this.route(method, path, fn, { authorizationType: apigw.AuthorizationType.NONE });
    acknowledge(route, 'AwsSolutions-APIG4', reason);
    return route;
  }

  private route(method: HttpMethod, path: string, fn: PayplaneFunction, auth: Pick<apigw.MethodOptions, 'authorizer' | 'authorizationType'>): apigw.Method {
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
