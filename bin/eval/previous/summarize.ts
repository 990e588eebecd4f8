/*
 * The extractive summarizer as it was before the news-aware ranking (commit
 * ffdb38b, lambda/core/summarize/): TextRank with a mild lead bias. Kept here
 * only so `npm run eval:summaries` can score it on the same stories; the
 * service ships one summarizer, in lambda/.
 */
import { analyzeText, type AnalyzedSentence } from './analyze-text';
import { rankSentences } from './rank-sentences';

const MAX_SENTENCE_CHARACTERS = 1_000;
const MIN_WORDS = 4;

export async function previousSummarize(text: string, count: number): Promise<{ sentences: string[]; keywords: string[] }> {
  const analysis = await analyzeText(text);
  const { sentences } = analysis;
  const chosen = await rankSentences(sentences, summaryCandidates(sentences, count), count, analysis.terms.length);
  return { sentences: chosen.map((i) => sentences[i]!.text), keywords: analysis.keywords };
}

function summaryCandidates(sentences: readonly AnalyzedSentence[], count: number): number[] {
  const indices = (keep: (s: AnalyzedSentence) => boolean) => sentences.flatMap((s, i) => (keep(s) ? [i] : []));
  const complete = (s: AnalyzedSentence) => s.text.length <= MAX_SENTENCE_CHARACTERS && /[.!?…]["'”’)\]]*$/.test(s.text);
  const substantial = indices((s) => complete(s) && s.wordCount >= MIN_WORDS);
  if (substantial.length >= count) return substantial;
  const anyComplete = indices(complete);
  return anyComplete.length > 0 ? anyComplete : sentences.map((_, i) => i);
}
