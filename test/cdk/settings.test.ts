import { App } from 'aws-cdk-lib';
import { settingsFromContext } from '../../lib/settings';

const settings = (context: Record<string, unknown>) => settingsFromContext(new App({ context }).node);

describe('settings from CDK context', () => {
  it('default to the prod stage with the stack\'s production defaults', () => {
    const { stage, stackProps } = settings({});
    expect(stage).toBe('prod');
    expect(stackProps).toMatchObject({ stageName: 'prod', deletionProtection: undefined, summarizer: undefined });
  });

  it('read booleans and numbers given as strings on the command line', () => {
    const { stackProps } = settings({ deletionProtection: 'false', multiAz: 'true', processorConcurrency: '3', backupRetentionDays: '14' });
    expect(stackProps).toMatchObject({ deletionProtection: false, multiAz: true, processorConcurrency: 3 });
    expect(stackProps.backupRetention?.toDays()).toBe(14);
  });

  it('read values given as JSON in cdk.json', () => {
    expect(settings({ multiAz: true, scheduleMinutes: 2 }).stackProps).toMatchObject({ multiAz: true, scheduleMinutes: 2 });
  });

  it('read the instance type without the db. prefix', () => {
    expect(settings({ databaseInstanceType: 't4g.small' }).stackProps.databaseInstanceType?.toString()).toBe('t4g.small');
  });

  it.each([
    [{ deletionProtection: 'no' }, /deletionProtection must be true or false/],
    [{ processorConcurrency: '0' }, /processorConcurrency must be an integer from 1/],
    [{ backupRetentionDays: '3' }, /backupRetentionDays must be an integer from 7/],
    [{ summarizer: 'openai' }, /summarizer must be extractive or bedrock/],
    [{ bedrockModelId: 'amazon.nova-lite-v1:0' }, /bedrockModelId is only used with -c summarizer=bedrock/],
    [{ stage: 'prod_eu' }, /stage must be/],
    [{ alarmEmail: 'oncall' }, /alarmEmail must be an e-mail address/],
    [{ postgresVersion: '17.2' }, /postgresVersion must be a PostgreSQL 16 minor version/],
    [{ databaseInstanceType: 'db.t4g.micro' }, /no "db." prefix/],
    [{ alarmEmial: 'oncall@example.com' }, /unknown context alarmEmial/],
  ])('refuse %p, naming the key', (context, message) => {
    expect(() => settings(context)).toThrow(message);
  });
});
