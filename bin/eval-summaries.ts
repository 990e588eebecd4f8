/*
 * `npm run eval:summaries`: ROUGE-1/2/Lsum F1 (rouge-score semantics, see
 * bin/rouge.ts) of the extractive summarizer, Lead-3 and the previous
 * summarizer on the CNN/DailyMail dev stories in ../shared/data/summaries,
 * each half and all; milliseconds per article; how many keywords appear in
 * the human highlights, against plain top-8 term frequency. The data stays
 * outside the repository; without it the script says so and exits 0.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { extractiveSummarizer } from '../lambda/core/summarize/extractive-summarizer';
import { splitSentences } from '../lambda/core/summarize/split-sentences';
import { loadPreviousSummarizer } from './eval/previous-summarizer';
import { rougeScores, rougeTokens } from './rouge';

const DATA = join(__dirname, '..', '..', 'shared', 'data', 'summaries', 'cnndm-dev.jsonl');
const SUMMARY_SENTENCES = 3;
const KEYWORDS = 8;

interface Story {
  id: string;
  article: string;
  highlights: string[];
}

interface Totals {
  r1: number;
  r2: number;
  rl: number;
  words: number;
}

type System = 'project' | 'lead3' | 'previous';
type KeywordSource = 'project' | 'previous' | 'termFrequency';

interface KeywordTotals {
  count: number;
  /** Keywords whose every word is in the highlights. */
  whole: number;
  /** Sum over keywords of the share of their words in the highlights. */
  words: number;
  /** Share of the highlights' content words that some keyword contains. */
  coverage: number;
}
const SYSTEMS: System[] = ['project', 'lead3', 'previous'];

async function main(): Promise<void> {
  if (!existsSync(DATA)) {
    console.log(`skipped: data not found (${DATA})`);
    return;
  }
  const stories = readFileSync(DATA, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Story);
  const summarizer = extractiveSummarizer();
  const previousSummarize = loadPreviousSummarizer(join(__dirname, '..'));
  const perStory: Array<Record<System, Totals>> = [];
  const ms: number[] = [];
  const keywordRows: Array<Record<KeywordSource, KeywordTotals>> = [];
  const previousMs: number[] = [];

  for (const story of stories) {
    const reference = story.highlights.join('\n');
    const content = Buffer.from(story.article);
    const t0 = performance.now();
    const result = await summarizer.summarize({ content, contentType: 'text/plain' }, { maxSentences: SUMMARY_SENTENCES });
    ms.push(performance.now() - t0);
    const t1 = performance.now();
    const previous = await previousSummarize(story.article, SUMMARY_SENTENCES);
    previousMs.push(performance.now() - t1);
    const lead3 = splitSentences(story.article).slice(0, SUMMARY_SENTENCES);
    const outputs: Record<System, string[]> = { project: result.sentences, lead3, previous: previous.sentences };
    const row = {} as Record<System, Totals>;
    for (const system of SYSTEMS) {
      const s = rougeScores(reference, outputs[system].join('\n'));
      row[system] = { r1: s.rouge1.fmeasure, r2: s.rouge2.fmeasure, rl: s.rougeLsum.fmeasure, words: outputs[system].join(' ').split(/\s+/).length };
    }
    perStory.push(row);

    const highlightTokens = new Set(rougeTokens(story.highlights.join(' ')));
    const highlightContent = new Set(
      rougeTokens(story.highlights.join(' ').toLowerCase().split(/\s+/).filter((w) => !BASELINE_STOPWORDS.has(w.replace(/[^a-z']/g, ''))).join(' ')),
    );
    const inHighlights = (keyword: string) => {
      const tokens = rougeTokens(keyword);
      return tokens.length > 0 && tokens.every((t) => highlightTokens.has(t));
    };
    const wordShare = (keyword: string) => {
      const tokens = rougeTokens(keyword);
      return tokens.length === 0 ? 0 : tokens.filter((t) => highlightTokens.has(t)).length / tokens.length;
    };
    const keywordRow = {} as Record<KeywordSource, KeywordTotals>;
    for (const [name, keywords] of [
      ['project', result.keywords],
      ['previous', previous.keywords],
      ['termFrequency', topTermFrequency(story.article, KEYWORDS)],
    ] as const) {
      const covered = new Set(keywords.flatMap((k) => rougeTokens(k)));
      keywordRow[name] = {
        count: keywords.length,
        whole: keywords.filter(inHighlights).length,
        words: keywords.reduce((sum, k) => sum + wordShare(k), 0),
        coverage: highlightContent.size === 0 ? 0 : [...highlightContent].filter((t) => covered.has(t)).length / highlightContent.size,
      };
    }
    keywordRows.push(keywordRow);
  }

  const halves: Array<[string, number, number]> = [
    [`stories 1-${Math.floor(stories.length / 2)} (tuning half)`, 0, Math.floor(stories.length / 2)],
    [`stories ${Math.floor(stories.length / 2) + 1}-${stories.length} (held-out half)`, Math.floor(stories.length / 2), stories.length],
    [`all ${stories.length}`, 0, stories.length],
  ];
  console.log(`ROUGE F1 x100 (rouge-score semantics, Porter stemming), ${SUMMARY_SENTENCES} sentences per summary`);
  console.log('set                                   system     R-1    R-2    R-Lsum  words');
  for (const [label, from, to] of halves) {
    for (const system of SYSTEMS) {
      const rows = perStory.slice(from, to).map((r) => r[system]);
      const mean = (k: keyof Totals) => rows.reduce((s, r) => s + r[k], 0) / rows.length;
      const pct = (k: keyof Totals) => (100 * mean(k)).toFixed(2).padStart(6);
      console.log(`${label.padEnd(38)}${system.padEnd(9)}${pct('r1')} ${pct('r2')} ${pct('rl')}  ${mean('words').toFixed(1).padStart(5)}`);
    }
  }
  const timing = (label: string, values: readonly number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const quantile = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    console.log(`ms per article, ${label}: median ${quantile(0.5).toFixed(2)}, p95 ${quantile(0.95).toFixed(2)}, max ${sorted[sorted.length - 1]!.toFixed(2)}`);
    return quantile(0.5);
  };
  const projectMedian = timing('project (extraction included)', ms);
  const previousMedian = timing('previous (same run)', previousMs);
  console.log(`median ratio project / previous: ${(projectMedian / previousMedian).toFixed(2)}`);
  console.log('keywords against the highlights (stemmed): keywords wholly in them / their words in them / highlight content words covered');
  for (const [label, from, to] of halves) {
    for (const name of ['project', 'previous', 'termFrequency'] as const) {
      const rows = keywordRows.slice(from, to).map((r) => r[name]);
      const sum = (k: keyof KeywordTotals) => rows.reduce((s, r) => s + r[k], 0);
      const pct = (x: number, of: number) => `${((100 * x) / of).toFixed(1)}%`.padStart(6);
      console.log(`${label.padEnd(38)}${name.padEnd(14)} ${pct(sum('whole'), sum('count'))} ${pct(sum('words'), sum('count'))} ${pct(sum('coverage'), rows.length)}`);
    }
  }
}

/** The baseline keywords: the most frequent words that are not stopwords (rouge-score tokens, ties by first use). */
function topTermFrequency(article: string, count: number): string[] {
  const counts = new Map<string, number>();
  for (const word of article.toLowerCase().match(/[a-z][a-z'-]*[a-z]|[a-z]/g) ?? []) {
    if (word.length < 3 || BASELINE_STOPWORDS.has(word)) continue;
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, count).map(([w]) => w);
}

// A plain English stopword list (SMART-like, short) so the baseline is not handicapped by function words.
const BASELINE_STOPWORDS = new Set(
  `a about above after again against all also am an and any are as at be because been before being below between both but
by can could did do does doing down during each even ever few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just like may me might more most much must my myself new no
nor not now of off on once one only or other our ours ourselves out over own said same says she should so some such
than that the their theirs them themselves then there these they this those through to too two under until up upon us
very was we were what when where which while who whom why will with would year years you your yours yourself`.split(/\s+/),
);

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
