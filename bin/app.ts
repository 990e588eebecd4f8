/**
 * The CDK app. Environment-agnostic (no lookups), so `npx cdk synth` works
 * offline with no AWS credentials. Per-environment settings come from context:
 *   npx cdk deploy -c stage=prod -c alarmEmail=oncall@example.com -c deletionProtection=true
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { acknowledgeFindings } from '../lib/nag';
import { SummaryJobsStack } from '../lib/summary-jobs-stack';

const app = new App();
const ctx = (key: string): string | undefined => app.node.tryGetContext(key);
const stage = ctx('stage') ?? 'prod';

const stack = new SummaryJobsStack(app, `SummaryJobs-${stage}`, {
  description: 'summary-jobs: document summaries on a Postgres job queue',
  stageName: stage,
  alarmEmail: ctx('alarmEmail'),
  deletionProtection: ctx('deletionProtection') !== 'false',
  multiAz: ctx('multiAz') === 'true',
  processorConcurrency: ctx('processorConcurrency') ? Number(ctx('processorConcurrency')) : undefined,
  summarizer: ctx('summarizer') === 'bedrock' ? 'bedrock' : 'extractive',
  bedrockModelId: ctx('bedrockModelId'),
});
acknowledgeFindings(stack, { multiAz: ctx('multiAz') === 'true' });
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
