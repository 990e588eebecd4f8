import { isCjk } from './language';
import { stem } from './stem';
import { stopwordsFor } from './stopwords';

const WORD_SEGMENTERS: ReadonlyMap<string, Intl.Segmenter> = new Map(
  ['en', 'zh', 'ja', 'ko', 'th'].map((locale) => [locale, new Intl.Segmenter(locale, { granularity: 'word' })]),
);
const segmenterFor = (language: string): Intl.Segmenter => WORD_SEGMENTERS.get(language) ?? WORD_SEGMENTERS.get('en')!;

// The segmenter's cost per character grows with the string; long runs are fed to it in pieces cut at spaces.
const PIECE = /\S[\s\S]{0,300}(?:\s|$)|\S+/g;

export interface Term {
  /** The key words are compared by: lowercase, folded (English: Porter step 1). */
  term: string;
  /** The written form, lowercase except for a name. */
  surface: string;
  /** Position of the word in the sentence's words. */
  position: number;
  /** Written with a capital inside a sentence, or in capitals: a name or an acronym. */
  capitalized: boolean;
}

/**
 * Word-like segments (letters or digits) of a sentence, as Intl.Segmenter
 * finds them; for Chinese and Japanese the segmenter's dictionary splits the
 * unspaced text into words.
 */
export function wordsOf(sentence: string, language = 'en'): string[] {
  const segmenter = segmenterFor(language);
  const words: string[] = [];
  const pieces = sentence.length > 300 ? (sentence.match(PIECE) ?? []) : [sentence];
  for (const piece of pieces) for (const { segment, isWordLike } of segmenter.segment(piece)) if (isWordLike) words.push(segment);
  return words;
}

/**
 * The content terms of a sentence's words: lowercase, the language's
 * stopwords and words without a letter removed; in English, possessives and
 * inflections folded so "lighthouse's", "lighthouses" and "lighthouse" are
 * one term. Single CJK characters are mostly particles and are left out.
 */
export function termsOf(words: readonly string[], language = 'en'): Term[] {
  const stopwords = stopwordsFor(language);
  const english = language === 'en' || language === 'und';
  const cjk = isCjk(language);
  const terms: Term[] = [];
  words.forEach((word, position) => {
    const lower = word.toLowerCase().replace(/’/g, "'");
    const surface = english ? lower.replace(/'s$/, '') : lower;
    if (!/\p{L}/u.test(surface) || stopwords.has(surface)) return;
    if (surface.length < 2) return;
    const capitalized = position > 0 && /^\p{Lu}/u.test(word) && !cjk;
    terms.push({ term: english ? stem(surface) : surface, surface, position, capitalized });
  });
  return terms;
}
