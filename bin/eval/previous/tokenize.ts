import { stem } from './stem';
import { STOPWORDS } from './stopwords';

const segmenter = new Intl.Segmenter('en', { granularity: 'word' });

// The segmenter's cost per character grows with the string; long runs are fed to it in pieces cut at spaces.
const PIECE = /\S[\s\S]{0,300}(?:\s|$)|\S+/g;

/** Word-like segments (letters or digits) of a sentence, as Intl.Segmenter finds them. */
export function wordsOf(sentence: string): string[] {
  const words: string[] = [];
  const pieces = sentence.length > 300 ? (sentence.match(PIECE) ?? []) : [sentence];
  for (const piece of pieces) for (const { segment, isWordLike } of segmenter.segment(piece)) if (isWordLike) words.push(segment);
  return words;
}

/**
 * The content terms of a sentence's words: lowercase, stopwords and words
 * without a letter removed, possessives and inflections folded so
 * "lighthouse's", "lighthouses" and "lighthouse" are one term. Each term
 * keeps the written form it came from, for showing keywords.
 */
export function termsOf(words: readonly string[]): Array<{ term: string; surface: string }> {
  const terms: Array<{ term: string; surface: string }> = [];
  for (const word of words) {
    const surface = word.toLowerCase().replace(/[’']s$/, '').replace(/’/g, "'");
    if (surface.length < 2 || !/\p{L}/u.test(surface) || STOPWORDS.has(surface)) continue;
    terms.push({ term: stem(surface), surface });
  }
  return terms;
}
