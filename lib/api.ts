import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { dashboardRoutes } from '../lambda/api/dashboard';
import { ROUTES, type Route } from '../lambda/api/routes';
import { PROBLEM_BASE } from '../lambda/core/errors';
import type { Database } from './database';
import { ServiceFunction } from './lambda-function';
import { retainServiceLogs } from './log-retention';
import type { Network } from './network';
import type { Processor } from './processor';

export interface ApiProps {
  readonly network: Network;
  readonly database: Database;
  readonly processor: Processor;
  /** @default 'prod' */
  readonly stageName?: string;
  /** Stage-wide steady request rate (per second) and burst. @default 100 rps, burst 200 */
  readonly throttle?: { readonly rateLimit: number; readonly burstLimit: number };
  /** Largest document accepted. @default MAX_DOCUMENT_BYTES (4 MiB) */
  readonly maxUploadBytes?: number;
}

/**
 * API Gateway hands bodies to Lambda base64-encoded (4/3 larger), and a
 * synchronous Lambda request is at most 6 MB: 4 MiB of document plus the event
 * around it fits, 4.5 MiB does not.
 */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

/**
 * The largest request body whose event the Lambda can still receive and answer
 * with its own 413 problem: base64 of the body plus about 64 KiB of headers and
 * request context within 6,291,456 bytes. From here to API Gateway's 10 MB the
 * Invoke itself is refused and API Gateway answers with its 5xx (as
 * bad-gateway / internal problems below); above 10 MB with the 413 problem.
 */
export const LARGEST_BODY_THE_LAMBDA_SEES = Math.floor(((6 * 1024 * 1024 - 64 * 1024) * 3) / 4);

interface GatewayProblem {
  readonly type: apigw.ResponseType;
  readonly status: number;
  readonly title: string;
  /** Slug of the problem type URI, shared with the Lambda's own problems where they mean the same. */
  readonly slug: string;
}

/**
 * API Gateway's own errors in the Lambda's problem+json shape. A gateway
 * response with a status code replaces the original status, so every type
 * that can occur here is listed with its own; the two defaults catch the rest.
 */
export const GATEWAY_PROBLEMS: readonly GatewayProblem[] = [
  // The only required request parameter is the x-api-key header: same answer as the Lambda's.
  { type: apigw.ResponseType.BAD_REQUEST_PARAMETERS, status: 401, title: 'Unauthorized', slug: 'missing-api-key' },
  { type: apigw.ResponseType.BAD_REQUEST_BODY, status: 400, title: 'Invalid request', slug: 'invalid-request' },
  { type: apigw.ResponseType.UNAUTHORIZED, status: 401, title: 'Unauthorized', slug: 'unauthorized' },
  { type: apigw.ResponseType.ACCESS_DENIED, status: 403, title: 'Forbidden', slug: 'forbidden' },
  { type: apigw.ResponseType.WAF_FILTERED, status: 403, title: 'Forbidden', slug: 'forbidden' },
  // API Gateway's answer to a path or method it has no route for; to a client that is a 404.
  { type: apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, status: 404, title: 'Not found', slug: 'not-found' },
  { type: apigw.ResponseType.RESOURCE_NOT_FOUND, status: 404, title: 'Not found', slug: 'not-found' },
  { type: apigw.ResponseType.REQUEST_TOO_LARGE, status: 413, title: 'Payload too large', slug: 'payload-too-large' },
  { type: apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE, status: 415, title: 'Unsupported media type', slug: 'unsupported-media-type' },
  { type: apigw.ResponseType.THROTTLED, status: 429, title: 'Too many requests', slug: 'throttled' },
  { type: apigw.ResponseType.QUOTA_EXCEEDED, status: 429, title: 'Too many requests', slug: 'quota-exceeded' },
  { type: apigw.ResponseType.API_CONFIGURATION_ERROR, status: 500, title: 'Internal server error', slug: 'internal' },
  { type: apigw.ResponseType.INTEGRATION_FAILURE, status: 502, title: 'Bad gateway', slug: 'bad-gateway' },
  { type: apigw.ResponseType.INTEGRATION_TIMEOUT, status: 504, title: 'Gateway timeout', slug: 'gateway-timeout' },
  { type: apigw.ResponseType.DEFAULT_4XX, status: 400, title: 'Request rejected', slug: 'invalid-request' },
  // Mostly a Lambda that crashed or returned something that is not a response.
  { type: apigw.ResponseType.DEFAULT_5XX, status: 502, title: 'Bad gateway', slug: 'bad-gateway' },
];

/**
 * The REST API: every route of the handler's route table (and the dashboard's)
 * as its own method, all proxied to one Lambda. API Gateway requires the
 * x-api-key header on authenticated routes; the Lambda checks the key itself
 * against the hashed keys in the database (usage plans are not an access control).
 */
export class Api extends Construct {
  readonly restApi: apigw.RestApi;
  readonly function: ServiceFunction;
  /** The admin credential, sent as x-api-key on /admin routes and by the dashboard. */
  readonly adminKey: secretsmanager.Secret;
  readonly accessLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const maxUploadBytes = props.maxUploadBytes ?? MAX_DOCUMENT_BYTES;
    if (maxUploadBytes > MAX_DOCUMENT_BYTES) {
      throw new Error(`maxUploadBytes ${maxUploadBytes} cannot pass API Gateway and Lambda (at most ${MAX_DOCUMENT_BYTES}, base64 in a 6 MB event)`);
    }

    this.adminKey = new secretsmanager.Secret(this, 'AdminApiKey', {
      description: 'summary-jobs admin credential: send it as x-api-key on /admin routes and the dashboard',
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
    });

    this.function = new ServiceFunction(this, 'UploadFunction', {
      network: props.network,
      database: props.database,
      handlerFile: 'api.ts',
      description: 'summary-jobs REST API: uploads, jobs, schedules, admin',
      // API Gateway gives up at 29 s; a longer run would only be billed.
      timeout: Duration.seconds(29),
      environment: {
        ADMIN_SECRET_ID: this.adminKey.secretArn,
        PROCESSOR_FUNCTION_NAME: props.processor.function.fn.functionName,
        MAX_UPLOAD_BYTES: String(maxUploadBytes),
      },
    });
    this.adminKey.grantRead(this.function.fn);
    props.processor.function.fn.grantInvoke(this.function.fn);

    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.DESTROY });
    const throttle = props.throttle ?? { rateLimit: 100, burstLimit: 200 };
    this.restApi = new apigw.RestApi(this, 'RestApi', {
      restApiName: Stack.of(this).stackName,
      description: 'summary-jobs: upload documents, follow their summary jobs',
      endpointTypes: [apigw.EndpointType.REGIONAL],
      // Every body reaches the Lambda as the client's bytes (base64 in the
      // event): a text type listed as text would be re-encoded to UTF-8 by
      // API Gateway first, and the handler's charset handling (ISO-8859-1,
      // UTF-16 with a BOM) would never see the original.
      binaryMediaTypes: ['*/*'],
      // Execution and access logs need the account's API Gateway logging role.
      // It is one per account and region, shared by every stage deployed there,
      // so it stays when one stack is destroyed.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: props.stageName ?? 'prod',
        tracingEnabled: true,
        metricsEnabled: true,
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        // Request bodies are documents: never copy them into logs.
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

    // Execution logs (level ERROR) go to a group API Gateway creates on first write.
    retainServiceLogs(this, 'ExecutionLogsRetention', `API-Gateway-Execution-Logs_${this.restApi.restApiId}/${this.restApi.deploymentStage.stageName}`);

    for (const problem of GATEWAY_PROBLEMS) {
      this.restApi.addGatewayResponse(`Problem_${problem.type.responseType}`, {
        type: problem.type,
        statusCode: String(problem.status),
        responseHeaders: { 'Content-Type': "'application/problem+json'" },
        templates: {
          // messageString is already a quoted JSON string.
          'application/json': `{"type":"${PROBLEM_BASE}${problem.slug}","title":"${problem.title}","status":${problem.status},"detail":$context.error.messageString}`,
        },
      });
    }

    // One permission for the whole API instead of one per method: a Lambda
    // resource policy is capped at 20 KB, and 44 per-method statements came close.
    const integration = new apigw.LambdaIntegration(this.function.fn, { proxy: true, scopePermissionToMethod: false });
    // No body models: the Lambda parses and checks bodies (raw documents among
    // them); API Gateway only turns away requests without a key header.
    const requireKeyHeader = new apigw.RequestValidator(this, 'RequireApiKeyHeader', {
      restApi: this.restApi,
      validateRequestParameters: true,
      validateRequestBody: true,
    });
    for (const route of [...ROUTES, ...dashboardRoutes]) this.addRoute(route, integration, requireKeyHeader);
  }

  private addRoute(route: Route, integration: apigw.Integration, requireKeyHeader: apigw.IRequestValidator): void {
    const resource = this.restApi.root.resourceForPath(route.path);
    const keyed = route.auth !== 'none';
    resource.addMethod(route.method, integration, {
      apiKeyRequired: false,
      authorizationType: apigw.AuthorizationType.NONE,
      ...(keyed ? { requestValidator: requireKeyHeader, requestParameters: { 'method.request.header.x-api-key': true } } : {}),
    });
  }
}
