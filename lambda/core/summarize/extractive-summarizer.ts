import { analyzeText, type AnalyzedSentence } from './analyze-text';
import { checkMaxSentences } from './check-max-sentences';
import { checkpoint } from './checkpoint';
import { extractText } from './extract-text';
import { writesWithoutSpaces } from './language';
import { rankSentences, type Genre } from './rank-sentences';
import type { Summarizer, SummaryResult } from './types';

/** Longer "sentences" are usually run-together text (tables, text without punctuation), not summary material. */
const MAX_SENTENCE_CHARACTERS = 1_000;
/**
 * Length cap: a sentence of more words is a run-on (a caption glued to the
 * text, a PDF table, a manual's list of options) and reads badly in a
 * summary; it is a candidate only when too few others are left.
 */
const MAX_WORDS = 60;
/** Shorter ones are headings or asides ("Why tidewatch?"), not summary material. */
const MIN_WORDS = 4;
/** A document with more unpunctuated blocks (headings, list items) than this share of its sentences is structured, not news. */
const STRUCTURED_SHARE = 0.15;
/**
 * Page furniture that survives extraction: bylines, datelines, update
 * stamps and calls to action. Says nothing about the subject.
 */
const PAGE_FURNITURE =
  /^(?:(?:first\s+)?published|updated|last\s+(?:updated|modified)|posted(?:\s+on)?|by\s+\.|scroll\s+down|click\s+here|read\s+more|sign\s+up|subscribe|follow\s+us|share\s+this|advertisement|image\s+(?:copyright|caption)|photo:|credit:)\b/i;
/** Mostly a date or time: "14 March 2026, 21:40." */
const DATE_LIKE = /^[\p{P}\s]*(?:\d{1,2}[:/.\s-]+)*(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?[\s,\d:/.-]*(?:am|pm|utc|gmt)?[\p{P}\s]*$/iu;
const CLOSED = /[.!?…。！？]["'”’»)\]」』）]*$/;

/**
 * The default summarizer: no network, deterministic. The summary is the
 * document's most central sentences, weighed by a position prior that
 * depends on the kind of document (see rankSentences), verbatim and in
 * document order. Candidates are complete sentences and list items of some
 * substance; headings, page furniture and run-ons are not.
 */
export function extractiveSummarizer(): Summarizer {
  return {
    name: 'extractive',
    async summarize(doc, { maxSentences, signal }): Promise<SummaryResult> {
      const count = checkMaxSentences(maxSentences);
      const text = await extractText(doc, signal);
      await checkpoint(signal);
      const analysis = await analyzeText(text, signal);
      const { sentences, language } = analysis;
      const candidates = summaryCandidates(sentences, count, language);
      const chosen = await rankSentences(sentences, candidates, count, analysis.terms.length, genreOf(sentences), signal);
      const summarySentences = chosen.map((i) => clip(sentences[i]!.text));
      return {
        summary: joinSentences(summarySentences, language),
        sentences: summarySentences,
        keywords: analysis.keywords,
        stats: analysis.stats,
        summarizer: 'extractive',
        language,
      };
    },
  };
}

/**
 * Indices of the sentences a summary may use, best kinds first: complete
 * sentences and list items of some substance, no furniture, no run-ons. A
 * document with too few of those may use any complete sentence or item, and
 * one with none at all its fragments.
 */
function summaryCandidates(sentences: readonly AnalyzedSentence[], count: number, language: string): number[] {
  const indices = (keep: (s: AnalyzedSentence) => boolean) => sentences.flatMap((s, i) => (keep(s) ? [i] : []));
  const cjk = writesWithoutSpaces(language);
  const usable = (s: AnalyzedSentence) => s.kind !== 'fragment' && s.text.length <= MAX_SENTENCE_CHARACTERS;
  const substantial = (s: AnalyzedSentence) =>
    usable(s) &&
    (cjk ? [...s.text].length >= 8 && s.text.length <= 3 * MAX_WORDS : s.wordCount >= MIN_WORDS && s.wordCount <= MAX_WORDS) &&
    !PAGE_FURNITURE.test(s.text) &&
    !DATE_LIKE.test(s.text);
  for (const keep of [substantial, usable]) {
    const found = indices(keep);
    if (found.length >= count) return found;
  }
  const any = indices(usable);
  return any.length > 0 ? any : sentences.map((_, i) => i);
}

/** News-like prose, or a document organized by headings and lists. */
function genreOf(sentences: readonly AnalyzedSentence[]): Genre {
  const unpunctuated = sentences.filter((s) => s.kind !== 'sentence').length;
  return unpunctuated <= STRUCTURED_SHARE * sentences.length ? 'news' : 'structured';
}

/** Items and fragments have no full stop of their own; one is added between them so the summary reads as sentences. */
function joinSentences(sentences: readonly string[], language: string): string {
  const cjk = writesWithoutSpaces(language);
  return sentences
    .map((s, i) => (i < sentences.length - 1 && !CLOSED.test(s) ? `${s}${cjk ? '。' : '.'}` : s))
    .join(cjk ? '' : ' ');
}

function clip(sentence: string): string {
  if (sentence.length <= MAX_SENTENCE_CHARACTERS) return sentence;
  const cut = sentence.lastIndexOf(' ', MAX_SENTENCE_CHARACTERS - 1);
  return `${sentence.slice(0, cut > 0 ? cut : MAX_SENTENCE_CHARACTERS - 1)}…`;
}
