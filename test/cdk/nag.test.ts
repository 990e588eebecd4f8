import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { acknowledgeFindings } from '../../lib/nag';
import { SummaryJobsStack, type SummaryJobsStackProps } from '../../lib/summary-jobs-stack';
import { testApp } from './synth';

// cdk-nag 3 runs as a validation plugin at synth: an unacknowledged error throws.
function synthWithNag(props: SummaryJobsStackProps, acknowledge: boolean): SummaryJobsStack {
  const app = testApp();
  const stack = new SummaryJobsStack(app, 'Nagged', props);
  if (acknowledge) acknowledgeFindings(stack);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
  return stack;
}

describe('cdk-nag AwsSolutions', () => {
  it('passes the production configuration with every finding acknowledged', () => {
    expect(() => synthWithNag({ alarmEmail: 'oncall@example.com' }, true)).not.toThrow();
  });

  it('passes the Bedrock, Multi-AZ configuration with every finding acknowledged', () => {
    expect(() => synthWithNag({ summarizer: 'bedrock', multiAz: true }, true)).not.toThrow();
  });

  it('passes a throwaway configuration (deletion protection off) with every finding acknowledged', () => {
    expect(() => synthWithNag({ deletionProtection: false, keepFinalSnapshot: false }, true)).not.toThrow();
  });

  it('fails synth on unacknowledged errors', () => {
    expect(() => synthWithNag({}, false)).toThrow(/AwsSolutions-/);
  });

  it('gives every acknowledgement a specific reason', () => {
    const app = testApp();
    const stack = new SummaryJobsStack(app, 'Reasons');
    acknowledgeFindings(stack);
    const reasons = stack.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === 'aws:cdk:acknowledged-rules'))
      .flatMap((m) => Object.entries(m.data as Record<string, string>))
      .filter(([id]) => id.startsWith('AwsSolutions'));
    expect(reasons.length).toBeGreaterThan(10);
    for (const [, reason] of reasons) expect(reason.length).toBeGreaterThan(60);
  });
});
