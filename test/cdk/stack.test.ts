import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ALARM_RULES, METRIC_NAMESPACE, PROCESSOR_SCHEDULE_MINUTES, SERVICE_NAME } from '../../lambda/core/alarm-rules';
import { acknowledgeFindings } from '../../lib/nag';
import { SummaryJobsStack, type SummaryJobsStackProps } from '../../lib/summary-jobs-stack';

// Skip asset bundling and the built-in template validation: the tests read the template only.
process.env.CDK_VALIDATION = 'false';
const newApp = () => new App({ context: { 'aws:cdk:bundling-stacks': [] } });

function synth(props: SummaryJobsStackProps = {}): Template {
  const app = newApp();
  return Template.fromStack(new SummaryJobsStack(app, 'Test', props));
}

const template = synth({ alarmEmail: 'oncall@example.com' });
const resources = (type: string) => template.findResources(type);
const only = <T = Record<string, any>>(type: string): T => {
  const all = Object.values(resources(type));
  expect(all).toHaveLength(1);
  return (all[0] as { Properties: T }).Properties;
};
const functions = () => Object.entries(resources('AWS::Lambda::Function')) as Array<[string, { Properties: Record<string, any> }]>;
const serviceFunctions = () => functions().filter(([, f]) => f.Properties.Environment?.Variables?.DB_SECRET_ARN);

describe('database', () => {
  it('is Postgres 16 with a concrete minor version, encrypted, private, backed up and protected from deletion', () => {
    const db = only('AWS::RDS::DBInstance');
    expect(db.Engine).toBe('postgres');
    expect(db.EngineVersion).toMatch(/^16\.\d+$/);
    expect(db.StorageEncrypted).toBe(true);
    expect(db.PubliclyAccessible).toBe(false);
    expect(db.DeletionProtection).toBe(true);
    expect(db.BackupRetentionPeriod).toBeGreaterThanOrEqual(7);
  });

  it('keeps its credentials in a generated, rotated secret', () => {
    const db = only('AWS::RDS::DBInstance');
    expect(JSON.stringify(db.MasterUserPassword)).toContain('resolve:secretsmanager');
    template.hasResourceProperties('AWS::SecretsManager::Secret', { GenerateSecretString: Match.objectLike({ GenerateStringKey: 'password' }) });
    template.resourceCountIs('AWS::SecretsManager::RotationSchedule', 1);
  });

  it('forces TLS on the server and on the RDS Proxy in front of it', () => {
    template.hasResourceProperties('AWS::RDS::DBParameterGroup', { Parameters: Match.objectLike({ 'rds.force_ssl': '1' }) });
    const proxy = only('AWS::RDS::DBProxy');
    expect(proxy.RequireTLS).toBe(true);
    expect(proxy.EngineFamily).toBe('POSTGRESQL');
  });

  it('can turn deletion protection off for a throwaway environment', () => {
    const db = Object.values(synth({ deletionProtection: false }).findResources('AWS::RDS::DBInstance'))[0] as { Properties: { DeletionProtection: boolean } };
    expect(db.Properties.DeletionProtection).toBe(false);
  });
});

describe('network', () => {
  it('has isolated subnets only and no NAT gateway or internet gateway', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    for (const subnet of Object.values(resources('AWS::EC2::Subnet')) as Array<{ Properties: { MapPublicIpOnLaunch?: boolean } }>) {
      expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
    }
  });

  it('has interface endpoints for Secrets Manager and Lambda only, plus Bedrock runtime when configured', () => {
    const services = (t: Template) =>
      Object.values(t.findResources('AWS::EC2::VPCEndpoint')).map((e) => JSON.stringify((e as { Properties: { ServiceName: unknown } }).Properties.ServiceName));
    const plain = services(template);
    expect(plain).toHaveLength(2);
    expect(plain.some((s) => s.includes('secretsmanager'))).toBe(true);
    expect(plain.some((s) => s.includes('.lambda'))).toBe(true);
    const withBedrock = services(synth({ summarizer: 'bedrock' }));
    expect(withBedrock).toHaveLength(3);
    expect(withBedrock.some((s) => s.includes('bedrock-runtime'))).toBe(true);
  });

  it('lets only Lambdas reach the proxy and only the proxy (and rotation) reach the database, on 5432', () => {
    const ingress = Object.values(resources('AWS::EC2::SecurityGroupIngress')) as Array<{ Properties: Record<string, any> }>;
    const on5432 = ingress.filter((r) => r.Properties.FromPort === 5432);
    expect(on5432.length).toBeGreaterThan(0);
    for (const rule of on5432) {
      expect(rule.Properties.ToPort).toBe(5432);
      expect(rule.Properties.SourceSecurityGroupId).toBeDefined();
      expect(rule.Properties.CidrIp).toBeUndefined();
    }
    const groups = Object.values(resources('AWS::EC2::SecurityGroup')) as Array<{ Properties: Record<string, any> }>;
    for (const g of groups) expect(JSON.stringify(g.Properties.SecurityGroupIngress ?? [])).not.toContain('0.0.0.0/0');
  });
});

describe('Lambdas', () => {
  it('run Node.js 24 on arm64 with tracing, source maps and a log group with retention, inside the VPC', () => {
    const fns = serviceFunctions();
    expect(fns.map(([id]) => id).sort()).toEqual([expect.stringMatching(/^Api/), expect.stringMatching(/^Migrations/), expect.stringMatching(/^Processor/)]);
    for (const [, fn] of fns) {
      expect(fn.Properties.Runtime).toBe('nodejs24.x');
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      expect(fn.Properties.Environment.Variables.NODE_OPTIONS).toBe('--enable-source-maps');
      expect(fn.Properties.VpcConfig.SubnetIds.length).toBe(2);
      expect(fn.Properties.LoggingConfig.LogGroup).toBeDefined();
    }
    for (const lg of Object.values(resources('AWS::Logs::LogGroup')) as Array<{ Properties: { RetentionInDays?: number } }>) {
      expect(lg.Properties.RetentionInDays).toBeGreaterThan(0);
    }
  });

  it('never carry a secret value in an environment variable: only the secret ARN and the proxy host', () => {
    for (const [, fn] of functions()) {
      const vars = fn.Properties.Environment?.Variables ?? {};
      for (const [name, value] of Object.entries(vars)) {
        expect(name).not.toMatch(/PASSWORD|DATABASE_URL/);
        expect(JSON.stringify(value)).not.toMatch(/resolve:secretsmanager|SecretString|password/i);
      }
    }
    const api = serviceFunctions().find(([id]) => id.startsWith('Api'))![1];
    expect(api.Properties.Environment.Variables.DB_SECRET_ARN).toEqual({ Ref: expect.stringMatching(/DatabaseInstanceSecret/) });
    expect(JSON.stringify(api.Properties.Environment.Variables.DB_HOST)).toMatch(/Proxy.*Endpoint/);
    expect(api.Properties.Environment.Variables.ADMIN_SECRET_ID).toEqual({ Ref: expect.stringMatching(/AdminApiKey/) });
  });

  it('give each function only the secrets, functions and models it uses', () => {
    const policies = Object.values(resources('AWS::IAM::Policy')) as Array<{ Properties: { PolicyDocument: { Statement: Array<Record<string, any>> } } }>;
    const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement);
    const scoped = (prefix: string) => statements.filter((s) => [s.Action].flat().some((a: string) => a.startsWith(prefix)));
    for (const s of [...scoped('secretsmanager:'), ...scoped('lambda:InvokeFunction'), ...scoped('bedrock:')]) {
      expect([s.Resource].flat()).not.toContain('*');
    }
    expect(scoped('bedrock:')).toHaveLength(0);
    const bedrock = Object.values(synth({ summarizer: 'bedrock', bedrockModelId: 'amazon.nova-lite-v1:0' }).findResources('AWS::IAM::Policy'))
      .flatMap((p) => (p as { Properties: { PolicyDocument: { Statement: Array<Record<string, any>> } } }).Properties.PolicyDocument.Statement)
      .filter((s) => [s.Action].flat().includes('bedrock:InvokeModel'));
    expect(bedrock).toHaveLength(1);
    expect(JSON.stringify(bedrock[0]!.Resource)).toContain('foundation-model/amazon.nova-lite-v1:0');
  });

  it('runs migrations at deploy time, after the database and proxy exist', () => {
    const triggers = template.findResources('Custom::Trigger');
    expect(Object.keys(triggers)).toHaveLength(1);
    const trigger = Object.values(triggers)[0] as { DependsOn?: string[] };
    expect(trigger.DependsOn?.some((d) => /DatabaseInstance/.test(d))).toBe(true);
    expect(trigger.DependsOn?.some((d) => /Proxy/.test(d))).toBe(true);
    const migrate = serviceFunctions().find(([id]) => id.startsWith('Migrations'))![1];
    expect(migrate.Properties.Environment.Variables.MIGRATIONS_DIR).toBe('/var/task/migrations');
  });
});

describe('processor', () => {
  const processor = () => serviceFunctions().find(([id]) => id.startsWith('Processor'))![1];

  it('is started by an EventBridge rule every minute', () => {
    const rule = only('AWS::Events::Rule');
    expect(rule.ScheduleExpression).toBe(`rate(${PROCESSOR_SCHEDULE_MINUTES} minute)`);
    expect(rule.Targets[0].RetryPolicy).toEqual({ MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 120 });
    expect(rule.Targets[0].DeadLetterConfig.Arn).toBeDefined();
  });

  it('has reserved concurrency and a timeout above its time budget', () => {
    const fn = processor().Properties;
    expect(fn.ReservedConcurrentExecutions).toBe(5);
    expect(fn.Timeout * 1000).toBeGreaterThan(Number(fn.Environment.Variables.MAX_RUN_MS));
  });

  it('does not let async invokes pile up retries, and sends failed invocations to an encrypted dead-letter queue', () => {
    const config = only('AWS::Lambda::EventInvokeConfig');
    expect(config.MaximumRetryAttempts).toBe(0);
    expect(config.MaximumEventAgeInSeconds).toBeLessThanOrEqual(300);
    expect(JSON.stringify(config.DestinationConfig.OnFailure.Destination)).toMatch(/FailedInvocations/);
    const queue = only('AWS::SQS::Queue');
    expect(queue.SqsManagedSseEnabled).toBe(true);
  });
});

describe('API', () => {
  it('routes every route of the handler table to the upload Lambda, requiring the x-api-key header where keyed', () => {
    const methods = Object.values(resources('AWS::ApiGateway::Method')) as Array<{ Properties: Record<string, any> }>;
    const real = methods.filter((m) => m.Properties.HttpMethod !== 'OPTIONS');
    expect(real.length).toBeGreaterThanOrEqual(20);
    for (const m of real) {
      expect(m.Properties.Integration.Type).toBe('AWS_PROXY');
      expect(m.Properties.ApiKeyRequired).toBe(false);
    }
    const keyed = real.filter((m) => m.Properties.RequestParameters?.['method.request.header.x-api-key'] === true);
    expect(keyed.length).toBe(real.length - 2); // /health and /dashboard are open
  });

  it('has access logs, stage throttling, tracing and binary media types for PDF', () => {
    const stage = only('AWS::ApiGateway::Stage');
    expect(stage.AccessLogSetting.DestinationArn).toBeDefined();
    expect(stage.TracingEnabled).toBe(true);
    expect(stage.MethodSettings[0]).toMatchObject({ ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 });
    expect(only('AWS::ApiGateway::RestApi').BinaryMediaTypes).toEqual(['application/pdf', 'application/octet-stream']);
  });

  it('answers API Gateway\'s own errors as problem+json', () => {
    const responses = Object.values(resources('AWS::ApiGateway::GatewayResponse')) as Array<{ Properties: Record<string, any> }>;
    const types = responses.map((r) => r.Properties.ResponseType);
    expect(types).toEqual(expect.arrayContaining(['THROTTLED', 'DEFAULT_4XX', 'DEFAULT_5XX', 'MISSING_AUTHENTICATION_TOKEN', 'REQUEST_TOO_LARGE']));
    for (const r of responses) {
      expect(r.Properties.ResponseParameters['gatewayresponse.header.Content-Type']).toBe("'application/problem+json'");
      const body = r.Properties.ResponseTemplates['application/json'] as string;
      expect(body).toContain(`"status":${r.Properties.StatusCode}`);
      expect(body).toMatch(/"type":"https:.*","title":".+"/);
    }
  });
});

describe('alarms', () => {
  it('page through an SNS topic encrypted with a customer-managed key that CloudWatch may use', () => {
    const topic = only('AWS::SNS::Topic');
    expect(JSON.stringify(topic.KmsMasterKeyId)).toMatch(/AlertsKey/);
    const key = only('AWS::KMS::Key');
    expect(key.EnableKeyRotation).toBe(true);
    const cw = key.KeyPolicy.Statement.find((s: Record<string, any>) => s.Principal?.Service === 'cloudwatch.amazonaws.com');
    expect(cw.Action).toEqual(expect.arrayContaining(['kms:Decrypt', 'kms:GenerateDataKey*']));
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com' });
  });

  it.each(ALARM_RULES.map((r) => [r.name, r] as const))('%s watches its metric with the rule\'s threshold and pages on-call', (_, rule) => {
    const alarms = Object.values(resources('AWS::CloudWatch::Alarm')) as Array<{ Properties: Record<string, any> }>;
    const alarm = alarms.find((a) => a.Properties.MetricName === rule.metric && a.Properties.Namespace === METRIC_NAMESPACE);
    expect(alarm).toBeDefined();
    const p = alarm!.Properties;
    expect(p).toMatchObject({
      Statistic: rule.statistic,
      Period: rule.periodSeconds,
      EvaluationPeriods: rule.evaluationPeriods,
      Threshold: rule.threshold,
      ComparisonOperator: rule.comparison,
      TreatMissingData: rule.treatMissingData,
      AlarmDescription: rule.description,
      Dimensions: [{ Name: 'service', Value: SERVICE_NAME }],
    });
    expect(JSON.stringify(p.AlarmActions)).toMatch(/AlertTopic/);
  });

  it('also watch processor errors and throttles, the API 5xx rate and the database', () => {
    const alarms = Object.values(resources('AWS::CloudWatch::Alarm')) as Array<{ Properties: Record<string, any> }>;
    const byMetric = (ns: string, name: string) => alarms.find((a) => a.Properties.Namespace === ns && a.Properties.MetricName === name);
    for (const [ns, name] of [
      ['AWS/Lambda', 'Errors'],
      ['AWS/Lambda', 'Throttles'],
      ['AWS/ApiGateway', '5XXError'],
      ['AWS/RDS', 'CPUUtilization'],
      ['AWS/RDS', 'FreeStorageSpace'],
      ['AWS/RDS', 'DatabaseConnections'],
    ]) {
      const alarm = byMetric(ns!, name!);
      expect(alarm).toBeDefined();
      expect(alarm!.Properties.AlarmDescription).toMatch(/First steps/);
      expect(JSON.stringify(alarm!.Properties.AlarmActions)).toMatch(/AlertTopic/);
    }
    expect(byMetric('AWS/ApiGateway', '5XXError')!.Properties.Statistic).toBe('Average');
  });

  it('are all on the alert topic', () => {
    for (const a of Object.values(resources('AWS::CloudWatch::Alarm')) as Array<{ Properties: Record<string, any> }>) {
      expect(JSON.stringify(a.Properties.AlarmActions)).toMatch(/AlertTopic/);
    }
  });
});

describe('dashboard', () => {
  it('shows throughput, outcomes, queue depth and age, latency and errors', () => {
    const body = JSON.stringify(only('AWS::CloudWatch::Dashboard').DashboardBody);
    for (const metric of ['JobsCompleted', 'JobsClaimed', 'JobsFailed', 'JobsRetried', 'JobsReaped', 'QueueDepth', 'OldestJobAgeSeconds', 'ProcessingDuration', 'Errors', 'Throttles', '5XXError', 'Latency']) {
      expect(body).toContain(metric);
    }
  });
});

describe('cdk-nag AwsSolutions', () => {
  it.each<[SummaryJobsStackProps]>([[{}], [{ summarizer: 'bedrock', multiAz: true }]])('passes with every finding acknowledged for a reason (%p)', (props) => {
    const app = newApp();
    const stack = new SummaryJobsStack(app, 'Nagged', props);
    acknowledgeFindings(stack, { multiAz: props.multiAz });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).not.toThrow();
  });

  it('fails synth on an unacknowledged error', () => {
    const app = newApp();
    new SummaryJobsStack(app, 'Unacknowledged');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow();
  });
});
