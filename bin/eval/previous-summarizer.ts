/*
 * The extractive summarizer as it was before the news-aware ranking, for
 * `npm run eval:summaries` to score on the same stories. Its modules are read
 * from git (commit PREVIOUS_COMMIT, lambda/core/summarize/) into a temporary
 * folder rather than kept as a second copy in the repository; only the
 * candidate choice of its entry point, which also extracted text and built
 * stats, is restated here for plain-text articles.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The last commit with the previous ranking. */
export const PREVIOUS_COMMIT = '3e6d24cb8b01f21a39348feba345dbe5fc20812d';

const MODULES = [
  'analyze-text.ts',
  'checkpoint.ts',
  'keywords.ts',
  'page-rank.ts',
  'rank-sentences.ts',
  'sparse-vector.ts',
  'split-sentences.ts',
  'stem.ts',
  'stopwords.ts',
  'tokenize.ts',
  'types.ts',
];

const MAX_SENTENCE_CHARACTERS = 1_000;
const MIN_WORDS = 4;

interface AnalyzedSentence {
  text: string;
  wordCount: number;
}

interface PreviousModules {
  analyzeText: (text: string) => Promise<{ sentences: AnalyzedSentence[]; terms: unknown[]; keywords: string[] }>;
  rankSentences: (sentences: readonly AnalyzedSentence[], candidates: readonly number[], count: number, termCount: number) => Promise<number[]>;
}

export type PreviousSummarize = (text: string, count: number) => Promise<{ sentences: string[]; keywords: string[] }>;

/** Loads the previous summarizer from git; throws with the reason where this checkout lacks the commit. */
export function loadPreviousSummarizer(repoRoot: string): PreviousSummarize {
  const dir = mkdtempSync(join(tmpdir(), 'summary-jobs-previous-summarizer-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  for (const file of MODULES) {
    const shown = spawnSync('git', ['show', `${PREVIOUS_COMMIT}:lambda/core/summarize/${file}`], { cwd: repoRoot, encoding: 'utf8', maxBuffer: 16 << 20 });
    if (shown.status !== 0) {
      throw new Error(`the previous summarizer is read from git, commit ${PREVIOUS_COMMIT.slice(0, 7)}: ${shown.stderr.trim() || 'git failed'}`);
    }
    writeFileSync(join(dir, file), shown.stdout);
  }
  // Run under tsx (npm run eval:summaries), which loads TypeScript by require.
  const { analyzeText } = require(join(dir, 'analyze-text.ts')) as Pick<PreviousModules, 'analyzeText'>;
  const { rankSentences } = require(join(dir, 'rank-sentences.ts')) as Pick<PreviousModules, 'rankSentences'>;

  return async (text, count) => {
    const analysis = await analyzeText(text);
    const { sentences } = analysis;
    const chosen = await rankSentences(sentences, summaryCandidates(sentences, count), count, analysis.terms.length);
    return { sentences: chosen.map((i) => sentences[i]!.text), keywords: analysis.keywords };
  };
}

function summaryCandidates(sentences: readonly AnalyzedSentence[], count: number): number[] {
  const indices = (keep: (s: AnalyzedSentence) => boolean) => sentences.flatMap((s, i) => (keep(s) ? [i] : []));
  const complete = (s: AnalyzedSentence) => s.text.length <= MAX_SENTENCE_CHARACTERS && /[.!?…]["'”’)\]]*$/.test(s.text);
  const substantial = indices((s) => complete(s) && s.wordCount >= MIN_WORDS);
  if (substantial.length >= count) return substantial;
  const anyComplete = indices(complete);
  return anyComplete.length > 0 ? anyComplete : sentences.map((_, i) => i);
}
