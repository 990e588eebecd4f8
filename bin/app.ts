/**
 * The CDK app. Environment-agnostic (no lookups), so `npx cdk synth` works
 * offline without AWS credentials. Per-environment settings come from context
 * (see lib/settings.ts), for example:
 *   npx cdk deploy -c stage=prod -c alarmEmail=oncall@example.com -c multiAz=true
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { acknowledgeFindings } from '../lib/nag';
import { settingsFromContext } from '../lib/settings';
import { SummaryJobsStack } from '../lib/summary-jobs-stack';

const app = new App();
const { stage, stackProps } = settingsFromContext(app.node);

const stack = new SummaryJobsStack(app, `SummaryJobs-${stage}`, {
  description: `summary-jobs (${stage}): document summaries on a Postgres job queue`,
  ...stackProps,
});
acknowledgeFindings(stack);
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
