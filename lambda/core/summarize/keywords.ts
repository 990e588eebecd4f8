import type { AnalyzedSentence } from './analyze-text';
import { isCjk, writesWithoutSpaces } from './language';
import { pageRank, type Graph } from './page-rank';

const KEYWORD_COUNT = 8;
// Terms this close in a sentence (after stopwords are gone) are linked.
const WINDOW = 3;
/** Multi-word names: two or three adjacent capitalized words, seen at least three times. */
const MAX_PHRASE_WORDS = 3;
const MIN_PHRASE_COUNT = 3;
/** A phrase must account for most uses of its rarest word: "harbor bridge", not "told reporters". */
const MIN_PHRASE_SHARE = 0.5;
const PHRASE_BONUS = 1.25;
const LEAD_SENTENCES = 3;
const LEAD_BOOST = 2;
/** Written capitalized inside sentences this often: a name, which says more about a document than a common noun. */
const NAME_SHARE = 0.6;
const NAME_BOOST = 1.5;

const CJK_NUMERAL = /^[〇一二三四五六七八九十百千万萬億亿两兩几幾数數]/u;

interface Candidate {
  ids: readonly number[];
  score: number;
  first: number;
}

/**
 * Keywords: the document's topics and names, lowercase.
 *
 * Words are scored by TextRank (terms are nodes, co-occurrence within a few
 * words links them, the terms most connected to other well-connected terms
 * are the document's topics) weighed by log2(1 + count), which settles the
 * near-ties TextRank leaves in short texts in favour of the repeated
 * subject. A word of the first three sentences counts double (the lead
 * names the subject); a name (written capitalized mid-sentence at least 60%
 * of the time) counts 1.5 times. A multi-word name seen at least three times
 * ("Aaron Hernandez", "Harbor Bridge") whose words mostly occur together
 * scores 1.25 times its best word, and once chosen it stands for its words:
 * variants merge, "Hernandez" is not listed again. Other multi-word runs
 * ("crimes committed", "told reporters") are left out, and names seen only
 * twice: on the CNN/DM dev stories either matched the highlights less often
 * than single words did (all runs seen twice: 44% of keywords wholly in the
 * highlights; names seen twice: 49.0%; three times: 50.2%; top-8 term
 * frequency: 49.9%). Numbers, words
 * under three letters (two for Chinese and Japanese, whose words are short)
 * and the language's stopwords are left out; English words are folded by
 * Porter step 1, so "bridges" and "bridge" are one keyword.
 */
export function topKeywords(sentences: readonly AnalyzedSentence[], display: readonly string[], language: string, count = KEYWORD_COUNT): string[] {
  const minLength = isCjk(language) ? 2 : 3;
  // Chinese and Japanese numbers are letters to Unicode: "一座" (one + classifier) is a number, not a topic.
  const eligible = display.map((word) => [...word].length >= minLength && !/\p{N}/u.test(word) && !CJK_NUMERAL.test(word));
  const links = new Map<number, Map<number, number>>();
  const firstSeen = new Map<number, number>();
  const occurrences = new Map<number, number>();
  const capitalized = new Map<number, number>();
  const link = (a: number, b: number) => {
    const row = links.get(a) ?? new Map<number, number>();
    row.set(b, (row.get(b) ?? 0) + 1);
    links.set(a, row);
  };
  const phrases = new Map<string, { ids: number[]; count: number; first: number }>();
  let position = 0;
  const leadTerms = new Set<number>();
  sentences.forEach((sentence, k) => {
    if (k < LEAD_SENTENCES) for (const id of sentence.termIds) leadTerms.add(id);
  });
  for (const sentence of sentences) {
    const ids = Array.from(sentence.termIds);
    const terms = ids.filter((id) => eligible[id]);
    terms.forEach((a, i) => {
      if (!firstSeen.has(a)) firstSeen.set(a, position++);
      for (let j = i + 1; j < Math.min(terms.length, i + WINDOW); j++) {
        const b = terms[j]!;
        if (a === b) continue;
        link(a, b);
        link(b, a);
      }
    });
    ids.forEach((id, i) => {
      if (!eligible[id]) return;
      occurrences.set(id, (occurrences.get(id) ?? 0) + 1);
      if (sentence.capitalized[i]) capitalized.set(id, (capitalized.get(id) ?? 0) + 1);
      // Runs of adjacent eligible words starting here.
      for (let length = 2; length <= MAX_PHRASE_WORDS && i + length <= ids.length; length++) {
        const run = ids.slice(i, i + length);
        const adjacent = run.every((rid, k) => eligible[rid] && (k === 0 || sentence.positions[i + k] === sentence.positions[i + k - 1]! + 1));
        if (!adjacent || new Set(run).size < length) break;
        const key = run.join(',');
        const entry = phrases.get(key) ?? { ids: run, count: 0, first: position };
        entry.count++;
        phrases.set(key, entry);
      }
    });
  }

  const nodes = [...firstSeen.keys()];
  const index = new Map(nodes.map((id, i) => [id, i]));
  const graph: Graph = nodes.map((id) => [...(links.get(id) ?? [])].map(([other, w]) => [index.get(other)!, w] as const));
  const ranks = pageRank(graph);
  const isName = (id: number) => (capitalized.get(id) ?? 0) >= NAME_SHARE * occurrences.get(id)! && occurrences.get(id)! >= 2;
  const wordScore = new Map<number, number>();
  nodes.forEach((id, i) => {
    const n = occurrences.get(id)!;
    const name = (capitalized.get(id) ?? 0) >= NAME_SHARE * n && n >= 2 ? NAME_BOOST : 1;
    wordScore.set(id, ranks[i]! * Math.log2(1 + n) * name * (leadTerms.has(id) ? LEAD_BOOST : 1));
  });

  const candidates: Candidate[] = nodes.map((id) => ({ ids: [id], score: wordScore.get(id)!, first: firstSeen.get(id)! }));
  for (const { ids, count: seen, first } of phrases.values()) {
    if (seen < MIN_PHRASE_COUNT) continue;
    const share = seen / Math.min(...ids.map((id) => occurrences.get(id)!));
    if (share < MIN_PHRASE_SHARE || !ids.every(isName)) continue;
    candidates.push({ ids, score: share * PHRASE_BONUS * Math.max(...ids.map((id) => wordScore.get(id)!)), first });
  }
  candidates.sort((a, b) => b.score - a.score || b.ids.length - a.ids.length || a.first - b.first);

  const joiner = writesWithoutSpaces(language) ? '' : ' ';
  const used = new Set<number>();
  const chosen: string[] = [];
  for (const candidate of candidates) {
    if (chosen.length === count) break;
    if (candidate.ids.some((id) => used.has(id))) continue;
    candidate.ids.forEach((id) => used.add(id));
    chosen.push(candidate.ids.map((id) => display[id]!).join(joiner));
  }
  return chosen;
}
