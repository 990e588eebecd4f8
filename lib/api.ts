import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { dashboardRoutes } from '../lambda/api/dashboard';
import { ROUTES, type Route } from '../lambda/api/routes';
import { PROBLEM_BASE } from '../lambda/core/errors';
import type { Database } from './database';
import { ServiceFunction } from './lambda-function';
import type { Network } from './network';
import type { Processor } from './processor';

export interface ApiProps {
  readonly network: Network;
  readonly database: Database;
  readonly processor: Processor;
  /** @default 'prod' */
  readonly stageName?: string;
  /** Stage-wide steady request rate and burst. @default 100 rps, burst 200 */
  readonly throttle?: { rateLimit: number; burstLimit: number };
  /** @default 5 MiB */
  readonly maxUploadBytes?: number;
}

// API Gateway's own errors, in the same problem+json shape as the Lambda's.
const GATEWAY_PROBLEMS: Array<[apigw.ResponseType, string, string, string]> = [
  [apigw.ResponseType.BAD_REQUEST_PARAMETERS, '400', 'Invalid request', 'missing-api-key'],
  [apigw.ResponseType.BAD_REQUEST_BODY, '400', 'Invalid request', 'invalid-request'],
  [apigw.ResponseType.REQUEST_TOO_LARGE, '413', 'Payload too large', 'payload-too-large'],
  [apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE, '415', 'Unsupported media type', 'unsupported-media-type'],
  [apigw.ResponseType.THROTTLED, '429', 'Too many requests', 'throttled'],
  [apigw.ResponseType.QUOTA_EXCEEDED, '429', 'Too many requests', 'quota-exceeded'],
  [apigw.ResponseType.ACCESS_DENIED, '403', 'Forbidden', 'forbidden'],
  // An unknown path: API Gateway says 403 "Missing Authentication Token"; it is a 404.
  [apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, '404', 'Not found', 'not-found'],
  [apigw.ResponseType.INTEGRATION_TIMEOUT, '504', 'Gateway timeout', 'gateway-timeout'],
  [apigw.ResponseType.DEFAULT_4XX, '400', 'Request rejected', 'gateway-rejected'],
  [apigw.ResponseType.DEFAULT_5XX, '502', 'Bad gateway', 'gateway-error'],
];

/**
 * The REST API: every route of the handler's route table (and the dashboard's),
 * proxied to one Lambda. API Gateway checks that an x-api-key header is present
 * on authenticated routes; the Lambda checks the key itself against the hashed
 * keys in the database (usage plans are not an access control).
 */
export class Api extends Construct {
  readonly restApi: apigw.RestApi;
  readonly function: ServiceFunction;
  readonly adminKey: secretsmanager.Secret;
  readonly accessLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.adminKey = new secretsmanager.Secret(this, 'AdminApiKey', {
      description: 'summary-jobs admin credential: send it as x-api-key on /admin routes and the dashboard',
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
    });
    Validations.of(this.adminKey).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'An operator credential held by people, not a database password: it is rotated by hand (put-secret-value), and the API reads it with a 5-minute cache.',
    });

    this.function = new ServiceFunction(this, 'UploadFunction', {
      network: props.network,
      database: props.database,
      handlerFile: 'api.ts',
      description: 'summary-jobs REST API: uploads, jobs, schedules, admin',
      timeout: Duration.seconds(29),
      environment: {
        ADMIN_SECRET_ID: this.adminKey.secretArn,
        PROCESSOR_FUNCTION_NAME: props.processor.function.fn.functionName,
        MAX_UPLOAD_BYTES: String(props.maxUploadBytes ?? 5 * 1024 * 1024),
      },
    });
    this.adminKey.grantRead(this.function.fn);
    props.processor.function.fn.grantInvoke(this.function.fn);

    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.DESTROY });
    const throttle = props.throttle ?? { rateLimit: 100, burstLimit: 200 };
    this.restApi = new apigw.RestApi(this, 'RestApi', {
      restApiName: `summary-jobs-${Stack.of(this).stackName}`,
      description: 'summary-jobs: upload documents, follow their summary jobs',
      endpointTypes: [apigw.EndpointType.REGIONAL],
      binaryMediaTypes: ['application/pdf', 'application/octet-stream'],
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.DESTROY,
      deployOptions: {
        stageName: props.stageName ?? 'prod',
        tracingEnabled: true,
        metricsEnabled: true,
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        throttlingRateLimit: throttle.rateLimit,
        throttlingBurstLimit: throttle.burstLimit,
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogs),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields({
          caller: false,
          httpMethod: true,
          ip: true,
          protocol: true,
          requestTime: true,
          resourcePath: true,
          responseLength: true,
          status: true,
          user: false,
        }),
      },
    });

    for (const [type, statusCode, title, slug] of GATEWAY_PROBLEMS) {
      this.restApi.addGatewayResponse(`Problem${slug.replace(/(^|-)(\w)/g, (_, __, c: string) => c.toUpperCase())}${statusCode}`, {
        type,
        statusCode,
        responseHeaders: { 'Content-Type': "'application/problem+json'" },
        templates: {
          'application/json': `{"type":"${PROBLEM_BASE}${slug}","title":"${title}","status":${statusCode},"detail":$context.error.messageString}`,
        },
      });
    }

    const integration = new apigw.LambdaIntegration(this.function.fn, { proxy: true });
    const keyValidator = new apigw.RequestValidator(this, 'RequireApiKeyHeader', {
      restApi: this.restApi,
      validateRequestParameters: true,
      validateRequestBody: true,
    });
    for (const route of [...ROUTES, ...dashboardRoutes]) this.addRoute(route, integration, keyValidator);
  }

  private addRoute(route: Route, integration: apigw.Integration, validator: apigw.IRequestValidator): void {
    const resource = this.restApi.root.resourceForPath(route.path);
    const keyed = route.auth !== 'none';
    resource.addMethod(route.method, integration, {
      apiKeyRequired: false,
      authorizationType: apigw.AuthorizationType.NONE,
      ...(keyed ? { requestValidator: validator, requestParameters: { 'method.request.header.x-api-key': true } } : {}),
    });
  }
}
