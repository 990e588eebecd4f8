import { Match } from 'aws-cdk-lib/assertions';
import { dashboardRoutes } from '../../lambda/api/dashboard';
import { ROUTES } from '../../lambda/api/routes';
import { ALARM_RULES, METRIC_NAMESPACE, Metric, PROCESSOR_SCHEDULE_MINUTES, SERVICE_NAME } from '../../lambda/core/alarm-rules';
import { LARGEST_BODY_THE_LAMBDA_SEES, MAX_DOCUMENT_BYTES } from '../../lib/api';
import { proxyName } from '../../lib/database';
import { BUNDLED_MIGRATIONS_DIR } from '../../lib/migrations';
import { actionsOf, allStatements, onlyResource, resourcesOf, resourcesOfStatement, serviceFunction, statementsOfRole, synthStack } from './synth';

// One synth of the default (production) configuration, shared by every test here.
const { template } = synthStack({ alarmEmail: 'oncall@example.com' });

const [databaseId, database] = onlyResource(template, 'AWS::RDS::DBInstance');
const [apiFnId, apiFn] = serviceFunction(template, 'Api');
const [processorId, processorFn] = serviceFunction(template, 'Processor');
const [migrateId, migrateFn] = serviceFunction(template, 'Migrations');
const serviceFunctions = [
  ['API', apiFnId, apiFn],
  ['processor', processorId, processorFn],
  ['migration', migrateId, migrateFn],
] as const;
const roleOf = (fn: typeof apiFn) => (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
const ref = (id: string) => ({ Ref: id });
const [dbSecretId] = resourcesOf(template, 'AWS::SecretsManager::Secret').find(([id]) => id.includes('DatabaseInstanceSecret'))!;
// The Lambdas get the secret through its attachment to the instance (its Ref is the same secret ARN).
const [dbSecretAttachmentId] = onlyResource(template, 'AWS::SecretsManager::SecretTargetAttachment');
const [adminSecretId] = resourcesOf(template, 'AWS::SecretsManager::Secret').find(([id]) => id.includes('AdminApiKey'))!;
const [topicId] = onlyResource(template, 'AWS::SNS::Topic');
const [queueId, queue] = onlyResource(template, 'AWS::SQS::Queue');
const alarms = resourcesOf(template, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
const isolatedSubnets = resourcesOf(template, 'AWS::EC2::Subnet').map(([id]) => id);

describe('database', () => {
  it('runs PostgreSQL 16 at a concrete minor version', () => {
    expect(database.Properties.Engine).toBe('postgres');
    expect(database.Properties.EngineVersion).toMatch(/^16\.\d+$/);
  });

  it('encrypts its storage', () => {
    expect(database.Properties.StorageEncrypted).toBe(true);
  });

  it('is not publicly accessible', () => {
    expect(database.Properties.PubliclyAccessible).toBe(false);
  });

  it('lives in the isolated subnets', () => {
    const [, group] = onlyResource(template, 'AWS::RDS::DBSubnetGroup');
    expect(group.Properties.SubnetIds).toEqual(isolatedSubnets.map(ref));
  });

  it('has deletion protection on by default', () => {
    expect(database.Properties.DeletionProtection).toBe(true);
  });

  it('keeps a final snapshot when deleted', () => {
    expect(database.DeletionPolicy).toBe('Snapshot');
  });

  it('keeps automated backups for at least 7 days', () => {
    expect(database.Properties.BackupRetentionPeriod).toBeGreaterThanOrEqual(7);
  });

  it('takes its master password from a generated Secrets Manager secret', () => {
    expect(database.Properties.MasterUserPassword).toEqual({ 'Fn::Join': ['', ['{{resolve:secretsmanager:', ref(dbSecretId), ':SecretString:password::}}']] });
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: Match.objectLike({ GenerateStringKey: 'password', SecretStringTemplate: Match.stringLikeRegexp('summary_jobs_admin') }),
    });
  });

  it('rotates the database credentials on a schedule', () => {
    const [, schedule] = onlyResource(template, 'AWS::SecretsManager::RotationSchedule');
    expect(JSON.stringify(schedule.Properties.SecretId)).toContain('SecretAttachment');
    expect(schedule.Properties.RotationRules.ScheduleExpression).toBe('rate(30 days)');
  });

  it('refuses connections without TLS', () => {
    template.hasResourceProperties('AWS::RDS::DBParameterGroup', { Parameters: Match.objectLike({ 'rds.force_ssl': '1' }) });
  });

  it('sits behind an RDS Proxy that requires TLS', () => {
    const [, proxy] = onlyResource(template, 'AWS::RDS::DBProxy');
    expect(proxy.Properties.RequireTLS).toBe(true);
  });

  it('gives the proxy a name unique to the stack (a second stage in the account would collide with a fixed one)', () => {
    const [, proxy] = onlyResource(template, 'AWS::RDS::DBProxy');
    expect(proxy.Properties.DBProxyName).toBe('Test-proxy');
    expect(proxyName('SummaryJobs-dev')).toBe('SummaryJobs-dev-proxy');
    expect(proxyName('SummaryJobs-prod')).not.toBe(proxyName('SummaryJobs-dev'));
    expect(proxyName(`9-${'A'.repeat(80)}--`)).toMatch(/^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,58}[A-Za-z0-9]$/);
  });

  it('keeps the credentials secret as long as the final snapshot they open', () => {
    const [, secret] = resourcesOf(template, 'AWS::SecretsManager::Secret').find(([id]) => id === dbSecretId)!;
    expect(secret.DeletionPolicy).toBe('Retain');
  });

  it('is the proxy\'s only target', () => {
    const [, target] = onlyResource(template, 'AWS::RDS::DBProxyTargetGroup');
    expect(target.Properties.DBInstanceIdentifiers).toEqual([ref(databaseId)]);
  });
});

describe('network', () => {
  it('has no NAT gateway', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
  });

  it('has no internet gateway', () => {
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
  });

  it('has two isolated subnets, one per AZ', () => {
    expect(isolatedSubnets).toHaveLength(2);
    for (const [, subnet] of resourcesOf(template, 'AWS::EC2::Subnet')) expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
  });

  const endpointServices = () => resourcesOf(template, 'AWS::EC2::VPCEndpoint').map(([, e]) => JSON.stringify(e.Properties.ServiceName));

  it('has a Secrets Manager interface endpoint', () => {
    expect(endpointServices().filter((s) => s.includes('.secretsmanager'))).toHaveLength(1);
  });

  it('has a Lambda interface endpoint (the API nudges the processor)', () => {
    expect(endpointServices().filter((s) => s.includes('.lambda'))).toHaveLength(1);
  });

  it('has no other endpoint, Bedrock runtime included, with the extractive summarizer', () => {
    expect(endpointServices()).toHaveLength(2);
  });

  it('resolves the AWS API names to the endpoints inside the VPC', () => {
    for (const [, endpoint] of resourcesOf(template, 'AWS::EC2::VPCEndpoint')) expect(endpoint.Properties.PrivateDnsEnabled).toBe(true);
  });

  const groupId = (logicalIdPart: string) => {
    const found = resourcesOf(template, 'AWS::EC2::SecurityGroup').filter(([id]) => id.includes(logicalIdPart));
    expect(found).toHaveLength(1);
    return { 'Fn::GetAtt': [found[0]![0], 'GroupId'] };
  };
  const ingress = () => resourcesOf(template, 'AWS::EC2::SecurityGroupIngress').map(([, r]) => r.Properties);

  it('lets only the Lambdas reach the proxy, on 5432', () => {
    const toProxy = ingress().filter((r) => JSON.stringify(r.GroupId) === JSON.stringify(groupId('ProxySecurityGroup')));
    expect(toProxy).toEqual([expect.objectContaining({ FromPort: 5432, ToPort: 5432, SourceSecurityGroupId: groupId('LambdaSecurityGroup') })]);
  });

  it('lets only the proxy and the rotation function reach the database, on its port 5432', () => {
    expect(database.Properties.Port).toBe('5432');
    const databasePort = { 'Fn::GetAtt': [databaseId, 'Endpoint.Port'] };
    const toDatabase = ingress().filter((r) => JSON.stringify(r.GroupId) === JSON.stringify(groupId('DatabaseSecurityGroup')));
    expect(toDatabase.map((r) => [r.FromPort, r.ToPort, r.SourceSecurityGroupId])).toEqual(
      expect.arrayContaining([
        [databasePort, databasePort, groupId('ProxySecurityGroup')],
        [databasePort, databasePort, groupId('RotationSecurityGroup')],
      ]),
    );
    expect(toDatabase).toHaveLength(2);
  });

  it('never opens the same path twice (EC2 rejects a duplicate rule)', () => {
    const rules = [...resourcesOf(template, 'AWS::EC2::SecurityGroupIngress'), ...resourcesOf(template, 'AWS::EC2::SecurityGroupEgress')].map(([, r]) =>
      JSON.stringify([r.Type, r.Properties.GroupId, r.Properties.IpProtocol, r.Properties.SourceSecurityGroupId ?? r.Properties.DestinationSecurityGroupId]),
    );
    expect(new Set(rules).size).toBe(rules.length);
  });

  it('lets the Lambdas out only to the proxy and the endpoints', () => {
    const egress = resourcesOf(template, 'AWS::EC2::SecurityGroupEgress')
      .map(([, r]) => r.Properties)
      .filter((r) => JSON.stringify(r.GroupId) === JSON.stringify(groupId('LambdaSecurityGroup')));
    expect(egress.map((r) => [r.FromPort, r.DestinationSecurityGroupId])).toEqual(
      expect.arrayContaining([
        [5432, groupId('ProxySecurityGroup')],
        [443, groupId('EndpointSecurityGroup')],
      ]),
    );
    expect(egress).toHaveLength(2);
  });

  it('opens nothing to the internet', () => {
    expect(JSON.stringify(template.toJSON())).not.toContain('0.0.0.0/0');
  });
});

describe.each(serviceFunctions)('the %s Lambda', (_, __, fn) => {
  it('runs on arm64', () => {
    expect(fn.Properties.Architectures).toEqual(['arm64']);
  });

  it('runs the newest Node.js runtime', () => {
    expect(fn.Properties.Runtime).toBe('nodejs24.x');
  });

  it('has active X-Ray tracing', () => {
    expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
  });

  it('enables source maps', () => {
    expect(fn.Properties.Environment.Variables.NODE_OPTIONS).toBe('--enable-source-maps');
  });

  it('logs to its own log group with a retention period', () => {
    const logGroupId = (fn.Properties.LoggingConfig.LogGroup as { Ref: string }).Ref;
    expect(template.toJSON().Resources[logGroupId].Properties.RetentionInDays).toBe(30);
  });

  it('runs in the isolated subnets', () => {
    expect(fn.Properties.VpcConfig.SubnetIds).toEqual(isolatedSubnets.map(ref));
  });

  it('finds the database through the secret ARN and the proxy endpoint, with TLS', () => {
    expect(fn.Properties.Environment.Variables).toMatchObject({
      DB_SECRET_ARN: ref(dbSecretAttachmentId),
      DB_HOST: { 'Fn::GetAtt': [expect.stringMatching(/^DatabaseInstanceProxy/), 'Endpoint'] },
      DB_NAME: 'summary_jobs',
      DB_SSL: 'true',
    });
  });

  it('may read the database secret', () => {
    const reads = statementsOfRole(template, roleOf(fn)).filter((s) => actionsOf(s).includes('secretsmanager:GetSecretValue'));
    expect(reads.flatMap(resourcesOfStatement)).toContainEqual(ref(dbSecretAttachmentId));
  });
});

describe('Lambda permissions and environment', () => {
  it('never puts a secret value or password in an environment variable', () => {
    for (const [, fn] of resourcesOf(template, 'AWS::Lambda::Function')) {
      for (const [name, value] of Object.entries(fn.Properties.Environment?.Variables ?? {})) {
        expect(name).not.toMatch(/PASSWORD|DATABASE_URL/i);
        expect(JSON.stringify(value)).not.toMatch(/resolve:secretsmanager|SecretString|password/i);
      }
    }
  });

  it('scopes every Secrets Manager action to named secrets', () => {
    const statements = allStatements(template).filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')));
    expect(statements.length).toBeGreaterThan(0);
    for (const s of statements) expect(resourcesOfStatement(s)).not.toContain('*');
  });

  it('scopes every Lambda invoke to a named function', () => {
    const statements = allStatements(template).filter((s) => actionsOf(s).some((a) => a.startsWith('lambda:')));
    expect(statements.length).toBeGreaterThan(0);
    for (const s of statements) expect(resourcesOfStatement(s)).not.toContain('*');
  });

  it('grants no Bedrock access with the extractive summarizer', () => {
    expect(allStatements(template).filter((s) => actionsOf(s).some((a) => a.startsWith('bedrock:')))).toEqual([]);
  });

  it('lets the API Lambda read only the database secret and the admin key', () => {
    const secrets = statementsOfRole(template, roleOf(apiFn))
      .filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')))
      .flatMap(resourcesOfStatement);
    expect(new Set(secrets.map((r) => JSON.stringify(r)))).toEqual(new Set([ref(dbSecretAttachmentId), ref(adminSecretId)].map((r) => JSON.stringify(r))));
  });

  it('lets the API Lambda invoke only the processor (and its versions)', () => {
    const invokes = statementsOfRole(template, roleOf(apiFn)).filter((s) => actionsOf(s).includes('lambda:InvokeFunction'));
    expect(invokes.flatMap(resourcesOfStatement)).toEqual([
      { 'Fn::GetAtt': [processorId, 'Arn'] },
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [processorId, 'Arn'] }, ':*']] },
    ]);
  });

  it('keeps the admin key away from the processor', () => {
    const secrets = statementsOfRole(template, roleOf(processorFn)).flatMap(resourcesOfStatement);
    expect(secrets).not.toContainEqual(ref(adminSecretId));
  });

  it('gives every log group a retention period', () => {
    for (const [, group] of resourcesOf(template, 'AWS::Logs::LogGroup')) expect(group.Properties.RetentionInDays).toBeGreaterThan(0);
  });

  it('gives the log groups AWS creates on first write a retention period too (rotation and trigger provider functions, API Gateway execution logs, RDS exports)', () => {
    const retained = resourcesOf(template, 'Custom::LogRetention').map(([, r]) => r.Properties);
    for (const r of retained) expect(r.RetentionInDays).toBe(30);
    const names = retained.map((r) => JSON.stringify(r.LogGroupName));
    const [providerId] = resourcesOf(template, 'AWS::Lambda::Function').find(([id]) => id.startsWith('AWSCDKTriggerCustomResourceProvider'))!;
    expect(names).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^"\/aws\/lambda\/TestDatabaseInstanceRotationSingleUser[A-Za-z0-9]+"$/),
        expect.stringContaining(`"/aws/lambda/",{"Ref":"${providerId}"}`),
        expect.stringMatching(/API-Gateway-Execution-Logs_",\{"Ref":"ApiRestApi[A-Z0-9]+"\},"\/",\{"Ref":"ApiRestApiDeploymentStageprod[A-Z0-9]+"\}/),
        expect.stringMatching(/\/aws\/rds\/instance\/",\{"Ref":"DatabaseInstance[A-Z0-9]+"\},"\/postgresql"/),
      ]),
    );
    const [, rotation] = onlyResource(template, 'AWS::Serverless::Application');
    expect(JSON.parse(names.find((n) => n.includes('Rotation'))!).replace('/aws/lambda/', '')).toBe(rotation.Properties.Parameters.functionName);
  });

  it('keeps no function without a log group that has a retention period', () => {
    const named = new Set(resourcesOf(template, 'Custom::LogRetention').map(([, r]) => JSON.stringify(r.Properties.LogGroupName)));
    for (const [id, fn] of resourcesOf(template, 'AWS::Lambda::Function')) {
      const managed = fn.Properties.LoggingConfig?.LogGroup !== undefined;
      // CDK's log-retention function sets one day on its own group itself.
      const ownRetention = id.startsWith('LogRetention');
      const retained = [...named].some((n) => n.includes(`{"Ref":"${id}"}`));
      expect({ id, covered: managed || ownRetention || retained }).toEqual({ id, covered: true });
    }
  });
});

describe('migrations at deploy time', () => {
  const [triggerId, trigger] = onlyResource(template, 'Custom::Trigger');

  it('run the migration function', () => {
    expect(trigger.Properties.HandlerArn).toEqual({ Ref: expect.stringMatching(/^MigrationsMigrateFunctionCurrentVersion/) });
  });

  it('run after the database instance and its proxy exist', () => {
    expect(trigger.DependsOn).toEqual(expect.arrayContaining([databaseId, expect.stringMatching(/^DatabaseInstanceProxy[A-Z0-9]+$/)]));
    expect(trigger.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^DatabaseInstanceProxyProxyTargetGroup/)]));
  });

  it('run again whenever the function (which carries the SQL files) changes', () => {
    expect(trigger.Properties.ExecuteOnHandlerChange).toBe(true);
  });

  it('tell the runner where the bundled SQL files are', () => {
    expect(migrateFn.Properties.Environment.Variables.MIGRATIONS_DIR).toBe(BUNDLED_MIGRATIONS_DIR);
  });

  it('finish before the API and the processor are created or updated', () => {
    expect(apiFn.DependsOn).toContain(triggerId);
    expect(processorFn.DependsOn).toContain(triggerId);
  });
});

describe('processor', () => {
  const [, rule] = onlyResource(template, 'AWS::Events::Rule');
  const target = rule.Properties.Targets[0];
  const [, invokeConfig] = onlyResource(template, 'AWS::Lambda::EventInvokeConfig');

  it('is started by an EventBridge schedule every minute', () => {
    expect(PROCESSOR_SCHEDULE_MINUTES).toBe(1);
    expect(rule.Properties.ScheduleExpression).toBe('rate(1 minute)');
  });

  it('is the schedule\'s target', () => {
    expect(target.Arn).toEqual({ 'Fn::GetAtt': [processorId, 'Arn'] });
  });

  it('does not retry scheduled events that could not be delivered', () => {
    expect(target.RetryPolicy.MaximumRetryAttempts).toBe(0);
  });

  it('sends undeliverable scheduled events to the dead-letter queue', () => {
    expect(target.DeadLetterConfig.Arn).toEqual({ 'Fn::GetAtt': [queueId, 'Arn'] });
  });

  it('reserves no concurrency unless asked (a new account\'s limit of 10 leaves nothing to reserve)', () => {
    expect(processorFn.Properties.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('gets two vCPUs (1,769 MiB each) and a summarize thread on each', () => {
    expect(processorFn.Properties.MemorySize).toBe(3538);
    expect(processorFn.Properties.Environment.Variables.SUMMARIZE_THREADS).toBe('2');
  });

  it('has a timeout above its time budget', () => {
    expect(processorFn.Properties.Timeout).toBe(300);
    expect(Number(processorFn.Properties.Environment.Variables.MAX_RUN_MS)).toBeLessThan(300_000);
  });

  it('does not retry async invocations', () => {
    expect(invokeConfig.Properties.FunctionName).toEqual(ref(processorId));
    expect(invokeConfig.Properties.MaximumRetryAttempts).toBe(0);
  });

  it('drops async invocations that waited more than a few minutes', () => {
    expect(invokeConfig.Properties.MaximumEventAgeInSeconds).toBeLessThanOrEqual(300);
  });

  it('sends failed async invocations to the dead-letter queue', () => {
    expect(invokeConfig.Properties.DestinationConfig.OnFailure.Destination).toEqual({ 'Fn::GetAtt': [queueId, 'Arn'] });
  });

  it('has an encrypted dead-letter queue', () => {
    expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
  });

  it('uses the extractive summarizer by default', () => {
    expect(processorFn.Properties.Environment.Variables.SUMMARIZER).toBe('extractive');
  });
});

describe('API', () => {
  const methods = resourcesOf(template, 'AWS::ApiGateway::Method').map(([, m]) => m.Properties);
  const apiResources = Object.fromEntries(resourcesOf(template, 'AWS::ApiGateway::Resource').map(([id, r]) => [id, r.Properties]));
  const [restApiId, restApi] = onlyResource(template, 'AWS::ApiGateway::RestApi');
  const pathOf = (resourceId: unknown): string => {
    if (JSON.stringify(resourceId).includes(`"${restApiId}","RootResourceId"`)) return '';
    const r = apiResources[(resourceId as { Ref: string }).Ref]!;
    return `${pathOf(r.ParentId)}/${r.PathPart}`;
  };
  const byRoute = Object.fromEntries(methods.map((m) => [`${m.HttpMethod} ${pathOf(m.ResourceId)}`, m]));

  it.each([
    'POST /uploads',
    'GET /jobs',
    'GET /jobs/{id}',
    'POST /jobs/{id}/cancel',
    'POST /jobs/{id}/retry',
    'GET /health',
    'GET /dashboard',
    'GET /admin/dashboard',
    'POST /admin/clients',
  ])('routes %s', (route) => {
    expect(byRoute[route]).toBeDefined();
  });

  it('has a method for every route of the handler\'s route table, and no other', () => {
    expect(Object.keys(byRoute).sort()).toEqual([...ROUTES, ...dashboardRoutes].map((r) => `${r.method} ${r.path}`).sort());
  });

  it('proxies every method to the API Lambda', () => {
    for (const m of methods) {
      expect(m.Integration.Type).toBe('AWS_PROXY');
      expect(JSON.stringify(m.Integration.Uri)).toContain(`"${apiFnId}","Arn"`);
    }
  });

  it('leaves authentication to the Lambda: no usage-plan API keys', () => {
    for (const m of methods) expect(m.ApiKeyRequired).toBe(false);
  });

  it('requires the x-api-key header on every authenticated route', () => {
    const [validatorId, validator] = onlyResource(template, 'AWS::ApiGateway::RequestValidator');
    expect(validator.Properties.ValidateRequestParameters).toBe(true);
    for (const route of [...ROUTES, ...dashboardRoutes].filter((r) => r.auth !== 'none')) {
      const m = byRoute[`${route.method} ${route.path}`]!;
      expect(m.RequestParameters).toEqual({ 'method.request.header.x-api-key': true });
      expect(m.RequestValidatorId).toEqual(ref(validatorId));
    }
  });

  it('does not require a key for /health and the dashboard page', () => {
    expect(byRoute['GET /health']!.RequestParameters).toBeUndefined();
    expect(byRoute['GET /dashboard']!.RequestParameters).toBeUndefined();
  });

  it('writes access logs to a log group', () => {
    const [, stage] = onlyResource(template, 'AWS::ApiGateway::Stage');
    expect(stage.Properties.AccessLogSetting.DestinationArn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^ApiAccessLogs/), 'Arn'] });
  });

  it('throttles the stage', () => {
    const [, stage] = onlyResource(template, 'AWS::ApiGateway::Stage');
    expect(stage.Properties.MethodSettings).toContainEqual(expect.objectContaining({ ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 }));
  });

  it('hands every body to the Lambda as bytes, so text keeps its charset', () => {
    expect(restApi.Properties.BinaryMediaTypes).toEqual(['*/*']);
  });

  it('answers bodies the Lambda cannot receive with a documented limit: the Lambda\'s 413 reaches past the upload limit', () => {
    expect(LARGEST_BODY_THE_LAMBDA_SEES).toBeGreaterThan(MAX_DOCUMENT_BYTES);
    expect(Math.ceil(LARGEST_BODY_THE_LAMBDA_SEES / 3) * 4 + 64 * 1024).toBeLessThanOrEqual(6 * 1024 * 1024);
  });

  describe('the API function\'s resource policy', () => {
    const permissions = resourcesOf(template, 'AWS::Lambda::Permission')
      .map(([, p]) => p.Properties)
      .filter((p) => JSON.stringify(p.FunctionName).includes(`"${apiFnId}"`));

    it('is one permission for the whole API, not one per method', () => {
      expect(permissions).toHaveLength(1);
      expect(permissions[0]).toMatchObject({ Action: 'lambda:InvokeFunction', Principal: 'apigateway.amazonaws.com' });
      expect(JSON.stringify(permissions[0]!.SourceArn)).toContain(`{"Ref":"${restApiId}"},"/*/*/*"`);
    });

    it('stays far below Lambda\'s 20,480-byte policy limit, and would with every route added twice over', () => {
      // The statement Lambda stores, with the longest realistic values in place of the references.
      const statement = (p: Record<string, unknown>, i: number) =>
        JSON.stringify({
          Sid: `Test-ApiPermissionApiScopedTestUploadFunction${i}-ABCDEFGHIJKL`,
          Effect: 'Allow',
          Principal: { Service: p.Principal },
          Action: p.Action,
          Resource: `arn:aws:lambda:ap-southeast-2:123456789012:function:SummaryJobs-prod-ApiUploadFunction1234ABCD-${'x'.repeat(12)}`,
          Condition: { ArnLike: { 'AWS:SourceArn': 'arn:aws:execute-api:ap-southeast-2:123456789012:abcdefghij/*/*/*' } },
        });
      const bytes = permissions.map(statement).reduce((sum, s) => sum + s.length, 0) + 100;
      expect(bytes).toBeLessThan(2 * 1024);
    });
  });

  it('caps uploads at what fits base64-encoded in a Lambda request', () => {
    expect(apiFn.Properties.Environment.Variables.MAX_UPLOAD_BYTES).toBe(String(MAX_DOCUMENT_BYTES));
    expect((MAX_DOCUMENT_BYTES * 4) / 3 + 64 * 1024).toBeLessThan(6 * 1024 * 1024);
  });

  it('tells the API Lambda which function to nudge and where the admin key is', () => {
    expect(apiFn.Properties.Environment.Variables).toMatchObject({ PROCESSOR_FUNCTION_NAME: ref(processorId), ADMIN_SECRET_ID: ref(adminSecretId) });
  });

  describe('gateway responses', () => {
    const responses = resourcesOf(template, 'AWS::ApiGateway::GatewayResponse').map(([, r]) => r.Properties);
    const byType = Object.fromEntries(responses.map((r) => [r.ResponseType as string, r]));

    it.each(['DEFAULT_4XX', 'DEFAULT_5XX', 'THROTTLED', 'BAD_REQUEST_PARAMETERS', 'MISSING_AUTHENTICATION_TOKEN', 'REQUEST_TOO_LARGE', 'INTEGRATION_TIMEOUT'])(
      're-shape %s',
      (type) => {
        expect(byType[type]).toBeDefined();
      },
    );

    it('are application/problem+json', () => {
      for (const r of responses) expect(r.ResponseParameters['gatewayresponse.header.Content-Type']).toBe("'application/problem+json'");
    });

    it('carry type, title, status and detail, with the status they are sent with', () => {
      for (const r of responses) {
        // What API Gateway substitutes for $context.error.messageString: a quoted string.
        const body = JSON.parse((r.ResponseTemplates['application/json'] as string).replace('$context.error.messageString', '"Too Many Requests"'));
        expect(body).toEqual({ type: expect.stringMatching(/^https:\/\//), title: expect.any(String), status: Number(r.StatusCode), detail: 'Too Many Requests' });
      }
    });

    it('answer a throttled request with 429', () => {
      expect(byType.THROTTLED!.StatusCode).toBe('429');
    });

    it('answer a missing x-api-key header with 401, as the Lambda does', () => {
      expect(byType.BAD_REQUEST_PARAMETERS!.StatusCode).toBe('401');
    });
  });
});

describe('alerting', () => {
  const [, key] = onlyResource(template, 'AWS::KMS::Key');
  const [, topic] = onlyResource(template, 'AWS::SNS::Topic');

  it('encrypts the alert topic with the customer-managed key', () => {
    expect(topic.Properties.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^AlarmsAlertsKey/), 'Arn'] });
  });

  // CloudWatch may act for this stack's alarms only: this account, alarm names with the stack's prefix.
  const fromOurAlarms = {
    StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
    ArnLike: { 'aws:SourceArn': { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':cloudwatch:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':alarm:Test-*']] } },
  };

  it('lets CloudWatch use the key for this stack\'s alarms, so alarm notifications are delivered', () => {
    expect(key.Properties.KeyPolicy.Statement).toContainEqual(
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: expect.arrayContaining(['kms:Decrypt', 'kms:GenerateDataKey*']),
        Condition: fromOurAlarms,
      }),
    );
  });

  it('lets CloudWatch publish to the topic for this stack\'s alarms (its policy allows nothing else but TLS-only access)', () => {
    const [, policy] = onlyResource(template, 'AWS::SNS::TopicPolicy');
    expect(policy.Properties.Topics).toEqual([ref(topicId)]);
    const statements = policy.Properties.PolicyDocument.Statement as Array<Record<string, unknown>>;
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: 'Allow', Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: 'sns:Publish', Resource: ref(topicId), Condition: fromOurAlarms }),
    );
    expect(statements.filter((s) => s.Effect === 'Allow')).toHaveLength(1);
    expect(statements).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
  });

  it('names every alarm so the conditions above match it', () => {
    for (const a of alarms) expect(a.AlarmName).toMatch(/^Test-/);
  });

  it('rotates the key', () => {
    expect(key.Properties.EnableKeyRotation).toBe(true);
  });

  it('subscribes the alarm e-mail address', () => {
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com', TopicArn: ref(topicId) });
  });

  it('has every alarm notify the topic on ALARM and on OK', () => {
    expect(alarms.length).toBe(ALARM_RULES.length + 7);
    for (const a of alarms) {
      expect(a.AlarmActions).toEqual([ref(topicId)]);
      expect(a.OKActions).toEqual([ref(topicId)]);
    }
  });
});

describe.each(ALARM_RULES.map((rule) => [rule.name, rule] as const))('the %s alarm', (name, rule) => {
  const alarm = alarms.find((a) => a.AlarmName === `Test-${name}`)!;

  it('exists under the rule\'s name', () => {
    expect(alarm).toBeDefined();
  });

  it('watches the rule\'s metric with the service dimension Powertools writes', () => {
    expect(alarm).toMatchObject({ Namespace: METRIC_NAMESPACE, MetricName: rule.metric, Dimensions: [{ Name: 'service', Value: SERVICE_NAME }] });
  });

  it('uses the rule\'s statistic and period', () => {
    expect(alarm).toMatchObject({ Statistic: rule.statistic, Period: rule.periodSeconds });
  });

  it('uses the rule\'s threshold and comparison', () => {
    expect(alarm).toMatchObject({ Threshold: rule.threshold, ComparisonOperator: rule.comparison });
  });

  it('uses the rule\'s evaluation periods', () => {
    expect(alarm.EvaluationPeriods).toBe(rule.evaluationPeriods);
  });

  it('treats missing data as the rule says', () => {
    expect(alarm.TreatMissingData).toBe(rule.treatMissingData);
  });

  it('carries the rule\'s description', () => {
    expect(alarm.AlarmDescription).toBe(rule.description);
  });

  it('notifies the alert topic', () => {
    expect(alarm.AlarmActions).toEqual([ref(topicId)]);
  });
});

describe.each([
  ['FailedInvocationsQueued', 'AWS/SQS', 'ApproximateNumberOfMessagesVisible'],
  ['ProcessorErrors', 'AWS/Lambda', 'Errors'],
  ['ProcessorThrottles', 'AWS/Lambda', 'Throttles'],
  ['Api5xxRate', 'AWS/ApiGateway', '5XXError'],
  ['DatabaseCpu', 'AWS/RDS', 'CPUUtilization'],
  ['DatabaseFreeStorage', 'AWS/RDS', 'FreeStorageSpace'],
  ['DatabaseConnections', 'AWS/RDS', 'DatabaseConnections'],
])('the %s alarm', (name, namespace, metric) => {
  const alarm = alarms.find((a) => a.AlarmName === `Test-${name}`)!;

  it(`watches ${namespace} ${metric}`, () => {
    expect(alarm).toMatchObject({ Namespace: namespace, MetricName: metric });
  });

  it('says what to do first', () => {
    expect(alarm.AlarmDescription).toMatch(/First steps: .+Where: /);
  });

  it('notifies the alert topic', () => {
    expect(alarm.AlarmActions).toEqual([ref(topicId)]);
  });
});

describe('AWS-metric alarm thresholds', () => {
  const alarm = (name: string) => alarms.find((a) => a.AlarmName === `Test-${name}`)!;

  it('page on the first processor invocation in the dead-letter queue', () => {
    expect(alarm('FailedInvocationsQueued')).toMatchObject({
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
      Statistic: 'Maximum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
  });

  it('watch the processor function', () => {
    expect(alarm('ProcessorErrors').Dimensions).toEqual([{ Name: 'FunctionName', Value: ref(processorId) }]);
  });

  it('page on the API 5xx rate (the average of 5XXError), not on single errors', () => {
    expect(alarm('Api5xxRate')).toMatchObject({ Statistic: 'Average', Threshold: 0.05, ComparisonOperator: 'GreaterThanThreshold' });
  });

  it('page on free storage falling below 2 GiB', () => {
    expect(alarm('DatabaseFreeStorage')).toMatchObject({ Threshold: 2 * 1024 ** 3, ComparisonOperator: 'LessThanThreshold' });
  });
});

describe('dashboard', () => {
  const [, dashboard] = onlyResource(template, 'AWS::CloudWatch::Dashboard');
  const body = JSON.stringify(dashboard.Properties.DashboardBody);

  it.each([
    Metric.JobsCompleted,
    Metric.JobsClaimed,
    Metric.JobsRetried,
    Metric.JobsFailed,
    Metric.JobsReaped,
    Metric.QueueDepth,
    Metric.OldestJobAgeSeconds,
    Metric.ProcessingDuration,
  ])('graphs %s', (metric) => {
    expect(body).toContain(`\\"${metric}\\"`);
  });

  it.each(['p50', 'p90', 'p99'])('graphs processing time at %s', (p) => {
    expect(body).toMatch(new RegExp(`ProcessingDuration.{0,200}\\\\"stat\\\\":\\\\"${p}\\\\"`));
  });

  it.each(['Errors', 'Throttles', 'Duration'])('graphs the processor Lambda\'s %s', (metric) => {
    expect(body).toContain(`\\"AWS/Lambda\\",\\"${metric}\\"`);
  });

  it.each(['4XXError', '5XXError', 'Latency'])('graphs the API\'s %s', (metric) => {
    expect(body).toContain(`\\"AWS/ApiGateway\\",\\"${metric}\\"`);
  });
});

describe('outputs', () => {
  const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;

  it.each(['ApiUrl', 'AdminKeyCommand', 'CreateClientCommand', 'AlertTopicArn', 'SubscribeToAlertsCommand', 'RunMigrationsCommand'])('include %s', (name) => {
    expect(outputs[name]).toBeDefined();
  });

  it('create a client without putting the admin key on a command line', () => {
    const command = JSON.stringify(outputs.CreateClientCommand!.Value);
    expect(command).toContain('aws secretsmanager get-secret-value --secret-id ');
    expect(command).toContain("| sed 's/^/x-api-key: /' | curl ");
    expect(command).toContain(' -H @- ');
    expect(command).not.toContain('$(');
  });

  it('tell the operator how to fire one alarm by hand, to see the alert arrive', () => {
    const [, parts] = (outputs.FireTestAlarmCommand!.Value as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
    expect(parts).toEqual(['aws cloudwatch set-alarm-state --alarm-name ', { Ref: expect.stringMatching(/^Alarms/) }, expect.stringMatching(/^ --state-value ALARM --state-reason /)]);
  });

  it('tell the operator how to read the admin key', () => {
    expect(JSON.stringify(outputs.AdminKeyCommand!.Value)).toContain('aws secretsmanager get-secret-value --secret-id ');
  });
});
