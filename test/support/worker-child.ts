/**
 * A real worker process for crash tests: drains the queue of DATABASE_URL
 * slowly, so the test can SIGKILL it in the middle of a batch.
 */
import { processorConfig } from '../../lambda/core/config';
import { createPool } from '../../lambda/core/db';
import { logger } from '../../lambda/core/logger';
import { RecordingMetrics } from '../../lambda/core/metrics';
import { runProcessor } from '../../lambda/core/processor';

async function main() {
  const pool = createPool({ connectionString: process.env.DATABASE_URL, max: 4 });
  const config = processorConfig({ BATCH_SIZE: '8', CONCURRENCY: '4', LEASE_SECONDS: '2', HEARTBEAT_SECONDS: '1', WORKER_ID: 'child' });
  await runProcessor(
    {
      pool,
      config,
      logger,
      metrics: new RecordingMetrics(),
      work: async (job) => {
        await pool.query('INSERT INTO work_started (job_id, pid) VALUES ($1, $2)', [job.id, process.pid]);
        await new Promise((r) => setTimeout(r, 400));
        return { by: 'child' };
      },
    },
    { awsRequestId: 'child', getRemainingTimeInMillis: () => 600_000 },
  );
  await pool.end();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
