import { checkpoint } from './checkpoint';
import { topKeywords } from './keywords';
import { splitSentences } from './split-sentences';
import { termsOf, wordsOf } from './tokenize';
import type { TextStats } from './types';

export interface AnalyzedSentence {
  text: string;
  wordCount: number;
  /** Content terms in order, as ids into `TextAnalysis.terms`. */
  termIds: Int32Array;
}

export interface TextAnalysis {
  sentences: AnalyzedSentence[];
  /** Each term's most frequent written form, by term id. */
  terms: string[];
  stats: TextStats;
  keywords: string[];
}

const WORDS_PER_MINUTE = 200;
// Characters tokenized between two checkpoints: some 20 ms of work.
const CHARACTERS_PER_SLICE = 100_000;

/** Sentences, terms, statistics and keywords of normalized text: everything both summarizers report. */
export async function analyzeText(text: string, signal?: AbortSignal): Promise<TextAnalysis> {
  const texts = splitSentences(text);
  await checkpoint(signal);

  const termIndex = new Map<string, number>();
  const surfaces: Array<Map<string, number>> = [];
  const sentences: AnalyzedSentence[] = [];
  let sinceCheckpoint = 0;
  for (let i = 0; i < texts.length; i++) {
    sinceCheckpoint += texts[i]!.length;
    if (sinceCheckpoint > CHARACTERS_PER_SLICE) {
      sinceCheckpoint = 0;
      await checkpoint(signal);
    }
    const words = wordsOf(texts[i]!);
    const ids = termsOf(words).map(({ term, surface }) => {
      let id = termIndex.get(term);
      if (id === undefined) {
        id = surfaces.length;
        termIndex.set(term, id);
        surfaces.push(new Map());
      }
      surfaces[id]!.set(surface, (surfaces[id]!.get(surface) ?? 0) + 1);
      return id;
    });
    sentences.push({ text: texts[i]!, wordCount: words.length, termIds: Int32Array.from(ids) });
  }
  await checkpoint(signal);

  const terms = surfaces.map(mostFrequent);
  const keywords = topKeywords(sentences.map((s) => s.termIds), terms);
  await checkpoint(signal);
  const wordCount = sentences.reduce((n, s) => n + s.wordCount, 0);
  return {
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
