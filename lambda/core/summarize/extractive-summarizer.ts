import { analyzeText, type AnalyzedSentence } from './analyze-text';
import { checkMaxSentences } from './check-max-sentences';
import { checkpoint } from './checkpoint';
import { extractText } from './extract-text';
import { rankSentences } from './rank-sentences';
import type { Summarizer, SummaryResult } from './types';

/** Longer "sentences" are usually run-together text (tables, text without punctuation), not summary material. */
const MAX_SENTENCE_CHARACTERS = 1_000;
/** Shorter ones are headings or asides ("Why tidewatch?"), not summary material. */
const MIN_WORDS = 4;

/**
 * The default summarizer: no network, deterministic. The summary is the
 * document's most central sentences by TextRank, verbatim and in document
 * order; headings and short fragments are not candidates.
 */
export function extractiveSummarizer(): Summarizer {
  return {
    name: 'extractive',
    async summarize(doc, { maxSentences, signal }): Promise<SummaryResult> {
      const count = checkMaxSentences(maxSentences);
      const text = await extractText(doc, signal);
      await checkpoint(signal);
      const analysis = await analyzeText(text, signal);
      const { sentences } = analysis;
      const candidates = summaryCandidates(sentences, count);
      const chosen = await rankSentences(sentences, candidates, count, analysis.terms.length, signal);
      const summarySentences = chosen.map((i) => clip(sentences[i]!.text));
      return {
        summary: summarySentences.join(' '),
        sentences: summarySentences,
        keywords: analysis.keywords,
        stats: analysis.stats,
        summarizer: 'extractive',
      };
    },
  };
}

/**
 * Indices of the sentences a summary may use: complete sentences (closing
 * punctuation; headings, titles and list fragments have none) of some
 * substance. A document with too few of those may use any complete sentence,
 * and one with none at all (a list, a table) its fragments.
 */
function summaryCandidates(sentences: readonly AnalyzedSentence[], count: number): number[] {
  const indices = (keep: (s: AnalyzedSentence) => boolean) => sentences.flatMap((s, i) => (keep(s) ? [i] : []));
  const complete = (s: AnalyzedSentence) => s.text.length <= MAX_SENTENCE_CHARACTERS && /[.!?…]["'”’)\]]*$/.test(s.text);
  const substantial = indices((s) => complete(s) && s.wordCount >= MIN_WORDS);
  if (substantial.length >= count) return substantial;
  const anyComplete = indices(complete);
  return anyComplete.length > 0 ? anyComplete : sentences.map((_, i) => i);
}

function clip(sentence: string): string {
  if (sentence.length <= MAX_SENTENCE_CHARACTERS) return sentence;
  const cut = sentence.lastIndexOf(' ', MAX_SENTENCE_CHARACTERS - 1);
  return `${sentence.slice(0, cut > 0 ? cut : MAX_SENTENCE_CHARACTERS - 1)}…`;
}
