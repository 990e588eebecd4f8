import { checkpoint } from './checkpoint';
import { topKeywords } from './keywords';
import { detectLanguage } from './language';
import { segmentText, type SentenceKind } from './split-sentences';
import { termsOf, wordsOf } from './tokenize';
import type { TextStats } from './types';

export interface AnalyzedSentence {
  text: string;
  kind: SentenceKind;
  /** Index of the block (paragraph, heading, list item) it is in. */
  block: number;
  wordCount: number;
  /** Content terms in order, as ids into `TextAnalysis.terms`. */
  termIds: Int32Array;
  /** Each term's word position in the sentence: adjacent terms can form a phrase. */
  positions: Int32Array;
  /** 1 where the term was written capitalized inside the sentence. */
  capitalized: Uint8Array;
}

export interface TextAnalysis {
  /** ISO 639-1 code of the detected language, `und` when undetermined. */
  language: string;
  sentences: AnalyzedSentence[];
  /** Each term's most frequent written form, by term id. */
  terms: string[];
  stats: TextStats;
  keywords: string[];
}

const WORDS_PER_MINUTE = 200;
// Characters tokenized between two checkpoints: some 20 ms of work.
const CHARACTERS_PER_SLICE = 100_000;

/** Language, sentences, terms, statistics and keywords of normalized text: everything both summarizers report. */
export async function analyzeText(text: string, signal?: AbortSignal): Promise<TextAnalysis> {
  const language = detectLanguage(text);
  const segmented = segmentText(text, language);
  await checkpoint(signal);

  const termIndex = new Map<string, number>();
  const surfaces: Array<Map<string, number>> = [];
  const sentences: AnalyzedSentence[] = [];
  let sinceCheckpoint = 0;
  for (const { text: sentenceText, kind, block } of segmented) {
    sinceCheckpoint += sentenceText.length;
    if (sinceCheckpoint > CHARACTERS_PER_SLICE) {
      sinceCheckpoint = 0;
      await checkpoint(signal);
    }
    const words = wordsOf(sentenceText, language);
    const terms = termsOf(words, language);
    const ids = terms.map(({ term, surface }) => {
      let id = termIndex.get(term);
      if (id === undefined) {
        id = surfaces.length;
        termIndex.set(term, id);
        surfaces.push(new Map());
      }
      surfaces[id]!.set(surface, (surfaces[id]!.get(surface) ?? 0) + 1);
      return id;
    });
    sentences.push({
      text: sentenceText,
      kind,
      block,
      wordCount: words.length,
      termIds: Int32Array.from(ids),
      positions: Int32Array.from(terms, (t) => t.position),
      capitalized: Uint8Array.from(terms, (t) => (t.capitalized ? 1 : 0)),
    });
  }
  await checkpoint(signal);

  const terms = surfaces.map(mostFrequent);
  const keywords = topKeywords(sentences, terms, language);
  await checkpoint(signal);
  const wordCount = sentences.reduce((n, s) => n + s.wordCount, 0);
  return {
    language,
    sentences,
    terms,
    keywords,
    stats: {
      sentenceCount: sentences.length,
      wordCount,
      characterCount: codePoints(text),
      readingTimeMinutes: Math.max(1, Math.ceil(wordCount / WORDS_PER_MINUTE)),
    },
  };
}

function mostFrequent(counts: Map<string, number>): string {
  let best = '';
  let bestCount = -1;
  for (const [surface, n] of counts) if (n > bestCount) [best, bestCount] = [surface, n];
  return best;
}

function codePoints(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) n++;
  }
  return n;
}
