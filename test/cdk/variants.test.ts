import { Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { ALARM_RULES } from '../../lambda/core/alarm-rules';
import { Api } from '../../lib/api';
import { Database } from '../../lib/database';
import { Network } from '../../lib/network';
import { Processor } from '../../lib/processor';
import { actionsOf, allStatements, onlyResource, resourcesOf, resourcesOfStatement, serviceFunction, synthStack, testApp } from './synth';

// Configurations other than the production default, one synth each.

describe('with the Bedrock summarizer', () => {
  const { template } = synthStack({ summarizer: 'bedrock', bedrockModelId: 'amazon.nova-lite-v1:0' });
  const [, processor] = serviceFunction(template, 'Processor');
  const invokeModel = allStatements(template).filter((s) => actionsOf(s).some((a) => a.startsWith('bedrock:')));

  it('adds a Bedrock runtime interface endpoint', () => {
    const services = resourcesOf(template, 'AWS::EC2::VPCEndpoint').map(([, e]) => JSON.stringify(e.Properties.ServiceName));
    expect(services.filter((s) => s.includes('.bedrock-runtime'))).toHaveLength(1);
    expect(services).toHaveLength(3);
  });

  it('grants bedrock:InvokeModel only', () => {
    expect(invokeModel.flatMap(actionsOf)).toEqual(['bedrock:InvokeModel']);
  });

  it('grants it on the configured model only', () => {
    const resources = invokeModel.flatMap(resourcesOfStatement);
    expect(resources).toHaveLength(1);
    expect(JSON.stringify(resources[0])).toMatch(/:bedrock:",\{"Ref":"AWS::Region"\},"::foundation-model\/amazon\.nova-lite-v1:0"/);
  });

  it('grants it to the processor only', () => {
    const [, policy] = resourcesOf(template, 'AWS::IAM::Policy').find(([, p]) => JSON.stringify(p.Properties.PolicyDocument).includes('bedrock:InvokeModel'))!;
    expect(policy.Properties.Roles).toEqual([{ Ref: expect.stringMatching(/^ProcessorProcessorFunctionServiceRole/) }]);
  });

  it('tells the processor which summarizer and model to use', () => {
    expect(processor.Properties.Environment.Variables).toMatchObject({ SUMMARIZER: 'bedrock', BEDROCK_MODEL_ID: 'amazon.nova-lite-v1:0' });
  });
});

describe('for a throwaway environment', () => {
  const { template } = synthStack({ deletionProtection: false, keepFinalSnapshot: false, backupRetention: Duration.days(7) });
  const [, database] = onlyResource(template, 'AWS::RDS::DBInstance');

  it('can turn deletion protection off', () => {
    expect(database.Properties.DeletionProtection).toBe(false);
  });

  it('can skip the final snapshot, and then deletes the credentials with the database', () => {
    expect(database.DeletionPolicy).toBe('Delete');
    const [, secret] = resourcesOf(template, 'AWS::SecretsManager::Secret').find(([id]) => id.includes('DatabaseInstanceSecret'))!;
    expect(secret.DeletionPolicy).toBe('Delete');
  });
});

describe('with other sizes and schedule', () => {
  const { template } = synthStack({
    stageName: 'staging',
    databaseInstanceType: new ec2.InstanceType('t4g.small'),
    databaseStorageGiB: 50,
    multiAz: true,
    backupRetention: Duration.days(14),
    postgresVersion: '16.9',
    scheduleMinutes: 5,
    processorConcurrency: 2,
    processorMemoryMiB: 2048,
    databaseConnectionsAlarmThreshold: 150,
  });
  const [, database] = onlyResource(template, 'AWS::RDS::DBInstance');
  const [, processor] = serviceFunction(template, 'Processor');

  it('names the API stage', () => {
    expect(onlyResource(template, 'AWS::ApiGateway::Stage')[1].Properties.StageName).toBe('staging');
  });

  it('uses the instance class asked for', () => {
    expect(database.Properties.DBInstanceClass).toBe('db.t4g.small');
  });

  it('allocates the storage asked for, with room to grow', () => {
    expect(database.Properties).toMatchObject({ AllocatedStorage: '50', MaxAllocatedStorage: 250 });
  });

  it('adds a standby in a second AZ', () => {
    expect(database.Properties.MultiAZ).toBe(true);
  });

  it('keeps backups as long as asked', () => {
    expect(database.Properties.BackupRetentionPeriod).toBe(14);
  });

  it('pins the PostgreSQL version asked for', () => {
    expect(database.Properties.EngineVersion).toBe('16.9');
  });

  it('runs the schedule at the interval asked for', () => {
    expect(onlyResource(template, 'AWS::Events::Rule')[1].Properties.ScheduleExpression).toBe('rate(5 minutes)');
  });

  it('reserves the processor concurrency asked for', () => {
    expect(processor.Properties.ReservedConcurrentExecutions).toBe(2);
  });

  it('gives the processor the memory asked for, and one summarize thread per full vCPU of it', () => {
    expect(processor.Properties.MemorySize).toBe(2048);
    expect(processor.Properties.Environment.Variables.SUMMARIZE_THREADS).toBe('1');
  });

  it('sizes the connections alarm', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'DatabaseConnections', Threshold: 150 });
  });
});

describe.each([1, 5, 15])('the processor-not-running alarm with a schedule of %i minutes', (minutes) => {
  const { template } = synthStack({ scheduleMinutes: minutes }, `Every${minutes}`);
  const liveness = ALARM_RULES.filter((r) => r.treatMissingData === 'breaching');
  const alarmOf = (name: string) => resourcesOf(template, 'AWS::CloudWatch::Alarm').find(([, a]) => a.Properties.AlarmName === `Every${minutes}-${name}`)![1].Properties;

  it('is one of the liveness rules', () => {
    expect(liveness.map((r) => r.name)).toContain('ProcessorNotRunning');
  });

  it.each(liveness.map((r) => [r.name, r] as const))('%s: each period holds at least one scheduled run, so silence means the processor stopped', (name, rule) => {
    const alarm = alarmOf(name);
    expect(alarm.Period).toBe(Math.max(rule.periodSeconds, minutes * 60));
    expect(alarm.Period % 60).toBe(0);
    expect(alarm.EvaluationPeriods).toBe(rule.evaluationPeriods);
    expect(alarm.TreatMissingData).toBe('breaching');
  });

  it('names its window in the description when the schedule stretches it', () => {
    const alarm = alarmOf('ProcessorNotRunning');
    if (minutes === 1) expect(alarm.AlarmDescription).toBe(ALARM_RULES.find((r) => r.name === 'ProcessorNotRunning')!.description);
    else expect(alarm.AlarmDescription).toContain(`every ${minutes} minutes, so the window is 3 periods of ${minutes} minutes: ${3 * minutes} minutes`);
  });

  it('leaves the sparse counters (silence is fine) on their own period', () => {
    const rule = ALARM_RULES.find((r) => r.name === 'JobFailedForGood')!;
    expect(alarmOf('JobFailedForGood').Period).toBe(rule.periodSeconds);
  });
});

describe('processor concurrency asked for on the command line', () => {
  it('is reserved', () => {
    const { template } = synthStack({ processorConcurrency: 3 }, 'Reserved');
    expect(serviceFunction(template, 'Processor')[1].Properties.ReservedConcurrentExecutions).toBe(3);
  });
});

describe('an upload limit above what API Gateway can hand to Lambda', () => {
  it('is refused at synth', () => {
    const stack = new Stack(testApp(), 'Limit');
    const network = new Network(stack, 'Network');
    const database = new Database(stack, 'Database', { network });
    const processor = new Processor(stack, 'Processor', { network, database });
    expect(() => new Api(stack, 'Api', { network, database, processor, maxUploadBytes: 5 * 1024 * 1024 })).toThrow(/maxUploadBytes/);
  });
});
