import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';

const CORE = join(__dirname, '..', 'lambda', 'core');

/**
 * As the processor's Lambda asset has it: one bundled `index.js` and `summarize-worker.js`
 * beside it, in a directory with no node_modules, so neither tsx nor the TypeScript source
 * can be what runs in the threads.
 */
describe('threaded summarizer in a bundle', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'summarize-pool-bundle-'));
    const entry = join(dir, 'entry.ts');
    writeFileSync(
      entry,
      `import { createThreadedSummarizer } from ${JSON.stringify(join(CORE, 'summarize-pool'))};
const pool = createThreadedSummarizer({ summarizer: 'extractive', bedrockModelId: 'unused', summarizeThreads: 2 });
const doc = 'The bridge opened in 1931 and carried trains for sixty years. Engineers replaced its deck in 1990. ' +
  'The city now plans a new crossing for cyclists and pedestrians. Work starts next spring and ends in 2029.';
Promise.all([1, 2, 3].map(() => pool.summarize({ content: Buffer.from(doc), contentType: 'text/plain' }, { maxSentences: 2 })))
  .then(async (results) => { console.log(JSON.stringify(results.map((r) => r.sentences))); await pool.close(); });
`,
    );
    const common = { bundle: true, platform: 'node' as const, format: 'cjs' as const, target: 'node20', logLevel: 'silent' as const, external: ['@aws-sdk/*'] };
    // The Lambda runtime provides the AWS SDK; this directory does not, so the entry carries its own.
    buildSync({ ...common, external: [], entryPoints: [entry], outfile: join(dir, 'index.js') });
    buildSync({ ...common, entryPoints: [join(CORE, 'summarize-worker.ts')], outfile: join(dir, 'summarize-worker.js'), minify: true });
    rmSync(entry);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs summarize-worker.js from beside the bundle', () => {
    const run = spawnSync(process.execPath, [join(dir, 'index.js')], { cwd: dir, encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH } });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const sentences = JSON.parse(run.stdout) as string[][];
    expect(sentences).toHaveLength(3);
    for (const chosen of sentences) expect(chosen).toHaveLength(2);
  });
});
