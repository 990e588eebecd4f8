/*
 * ROUGE-1, ROUGE-2 and ROUGE-Lsum as the reference Python package
 * (`rouge-score`, google-research/rouge) computes them, so figures printed by
 * `npm run eval:summaries` compare with published ones: lowercase, every run
 * of characters other than a-z and 0-9 is a space, tokens over three
 * characters go through NLTK's Porter stemmer (its default NLTK_EXTENSIONS
 * mode), ROUGE-Lsum splits both texts at newlines and counts the union LCS
 * of each reference sentence without counting a token twice.
 */

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

export interface RougeScores {
  rouge1: RougeScore;
  rouge2: RougeScore;
  rougeLsum: RougeScore;
}

const fmeasure = (precision: number, recall: number): number =>
  precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;

const score = (precision: number, recall: number): RougeScore => ({ precision, recall, fmeasure: fmeasure(precision, recall) });

/** rouge-score's tokenizer, with stemming on. */
export function rougeTokens(text: string, stemming = true): string[] {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, ' ')
    .split(/\s+/)
    .map((t) => (stemming && t.length > 3 ? porterStem(t) : t))
    .filter((t) => /^[a-z0-9]+$/.test(t));
}

/** Scores of a prediction against a target (reference); sentences are lines, for ROUGE-Lsum. */
export function rougeScores(target: string, prediction: string, stemming = true): RougeScores {
  const t = rougeTokens(target, stemming);
  const p = rougeTokens(prediction, stemming);
  const lines = (text: string) => text.split('\n').filter((s) => s.length > 0).map((s) => rougeTokens(s, stemming));
  return {
    rouge1: ngramScore(t, p, 1),
    rouge2: ngramScore(t, p, 2),
    rougeLsum: summaryLevelLcs(lines(target), lines(prediction)),
  };
}

export function ngramScore(target: readonly string[], prediction: readonly string[], n: number): RougeScore {
  const t = ngrams(target, n);
  const p = ngrams(prediction, n);
  let overlap = 0;
  for (const [gram, count] of t) overlap += Math.min(count, p.get(gram) ?? 0);
  const tCount = Math.max(0, target.length - n + 1);
  const pCount = Math.max(0, prediction.length - n + 1);
  return score(overlap / Math.max(pCount, 1), overlap / Math.max(tCount, 1));
}

function ngrams(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const gram = tokens.slice(i, i + n).join(' ');
    counts.set(gram, (counts.get(gram) ?? 0) + 1);
  }
  return counts;
}

/** Indices into `ref` of one longest common subsequence, read back the way rouge-score reads it. */
export function lcsIndices(ref: readonly string[], can: readonly string[]): number[] {
  const cols = can.length + 1;
  const table = new Int32Array((ref.length + 1) * cols);
  for (let i = 1; i <= ref.length; i++) {
    for (let j = 1; j <= can.length; j++) {
      table[i * cols + j] =
        ref[i - 1] === can[j - 1] ? table[(i - 1) * cols + j - 1]! + 1 : Math.max(table[(i - 1) * cols + j]!, table[i * cols + j - 1]!);
    }
  }
  const out: number[] = [];
  let i = ref.length;
  let j = can.length;
  while (i > 0 && j > 0) {
    if (ref[i - 1] === can[j - 1]) {
      out.unshift(i - 1);
      i--;
      j--;
    } else if (table[i * cols + j - 1]! > table[(i - 1) * cols + j]!) j--;
    else i--;
  }
  return out;
}

export function summaryLevelLcs(refSentences: readonly string[][], canSentences: readonly string[][]): RougeScore {
  const m = refSentences.reduce((s, r) => s + r.length, 0);
  const n = canSentences.reduce((s, c) => s + c.length, 0);
  if (m === 0 || n === 0) return score(0, 0);
  const countsR = new Map<string, number>();
  const countsC = new Map<string, number>();
  for (const s of refSentences) for (const t of s) countsR.set(t, (countsR.get(t) ?? 0) + 1);
  for (const s of canSentences) for (const t of s) countsC.set(t, (countsC.get(t) ?? 0) + 1);
  let hits = 0;
  for (const ref of refSentences) {
    const union = new Set<number>();
    for (const can of canSentences) for (const i of lcsIndices(ref, can)) union.add(i);
    for (const i of [...union].sort((a, b) => a - b)) {
      const t = ref[i]!;
      if ((countsC.get(t) ?? 0) > 0 && (countsR.get(t) ?? 0) > 0) {
        hits++;
        countsC.set(t, countsC.get(t)! - 1);
        countsR.set(t, countsR.get(t)! - 1);
      }
    }
  }
  return score(hits / n, hits / m);
}

// ---------------------------------------------------------------------------
// NLTK's PorterStemmer, mode NLTK_EXTENSIONS (nltk/stem/porter.py).

const IRREGULAR: Record<string, string> = {
  skies: 'sky', sky: 'sky', dying: 'die', lying: 'lie', tying: 'tie', news: 'news',
  innings: 'inning', inning: 'inning', outings: 'outing', outing: 'outing',
  cannings: 'canning', canning: 'canning', howe: 'howe', proceed: 'proceed', exceed: 'exceed', succeed: 'succeed',
};

function isConsonant(w: string, i: number): boolean {
  const c = w[i]!;
  if (c === 'a' || c === 'e' || c === 'i' || c === 'o' || c === 'u') return false;
  if (c === 'y') return i === 0 ? true : !isConsonant(w, i - 1);
  return true;
}

function measure(stem: string): number {
  let cv = '';
  for (let i = 0; i < stem.length; i++) cv += isConsonant(stem, i) ? 'c' : 'v';
  return cv.split('vc').length - 1;
}

const containsVowel = (stem: string): boolean => [...stem].some((_, i) => !isConsonant(stem, i));
const endsDoubleConsonant = (w: string): boolean => w.length >= 2 && w[w.length - 1] === w[w.length - 2] && isConsonant(w, w.length - 1);
const endsCvc = (w: string): boolean =>
  (w.length >= 3 && isConsonant(w, w.length - 3) && !isConsonant(w, w.length - 2) && isConsonant(w, w.length - 1) && !'wxy'.includes(w[w.length - 1]!)) ||
  (w.length === 2 && !isConsonant(w, 0) && isConsonant(w, 1));
const positive = (stem: string): boolean => measure(stem) > 0;

type Rule = [suffix: string, replacement: string, condition: ((stem: string) => boolean) | null];

function applyRules(word: string, rules: readonly Rule[]): string {
  for (const [suffix, replacement, condition] of rules) {
    if (suffix === '*d' && endsDoubleConsonant(word)) {
      const stem = word.slice(0, -2);
      return condition === null || condition(stem) ? stem + replacement : word;
    }
    if (word.endsWith(suffix)) {
      const stem = suffix === '' ? word : word.slice(0, -suffix.length);
      return condition === null || condition(stem) ? stem + replacement : word;
    }
  }
  return word;
}

function step1a(w: string): string {
  if (w.endsWith('ies') && w.length === 4) return `${w.slice(0, -3)}ie`;
  return applyRules(w, [['sses', 'ss', null], ['ies', 'i', null], ['ss', 'ss', null], ['s', '', null]]);
}

function step1b(w: string): string {
  if (w.endsWith('ied')) return w.length === 4 ? `${w.slice(0, -3)}ie` : `${w.slice(0, -3)}i`;
  if (w.endsWith('eed')) {
    const stem = w.slice(0, -3);
    return measure(stem) > 0 ? `${stem}ee` : w;
  }
  let stem: string | null = null;
  for (const suffix of ['ed', 'ing']) {
    if (w.endsWith(suffix)) {
      const s = w.slice(0, -suffix.length);
      if (containsVowel(s)) {
        stem = s;
        break;
      }
    }
  }
  if (stem === null) return w;
  const last = stem[stem.length - 1]!;
  return applyRules(stem, [
    ['at', 'ate', null],
    ['bl', 'ble', null],
    ['iz', 'ize', null],
    ['*d', last, () => !'lsz'.includes(last)],
    ['', 'e', (s) => measure(s) === 1 && endsCvc(s)],
  ]);
}

const step1c = (w: string): string => applyRules(w, [['y', 'i', (s) => s.length > 1 && isConsonant(s, s.length - 1)]]);

function step2(w: string): string {
  if (w.endsWith('alli') && positive(w.slice(0, -4))) return step2(`${w.slice(0, -4)}al`);
  return applyRules(w, [
    ['ational', 'ate', positive],
    ['tional', 'tion', positive],
    ['enci', 'ence', positive],
    ['anci', 'ance', positive],
    ['izer', 'ize', positive],
    ['bli', 'ble', positive],
    ['alli', 'al', positive],
    ['entli', 'ent', positive],
    ['eli', 'e', positive],
    ['ousli', 'ous', positive],
    ['ization', 'ize', positive],
    ['ation', 'ate', positive],
    ['ator', 'ate', positive],
    ['alism', 'al', positive],
    ['iveness', 'ive', positive],
    ['fulness', 'ful', positive],
    ['ousness', 'ous', positive],
    ['aliti', 'al', positive],
    ['iviti', 'ive', positive],
    ['biliti', 'ble', positive],
    ['fulli', 'ful', positive],
    ['logi', 'log', () => positive(w.slice(0, -3))],
  ]);
}

const step3 = (w: string): string =>
  applyRules(w, [
    ['icate', 'ic', positive],
    ['ative', '', positive],
    ['alize', 'al', positive],
    ['iciti', 'ic', positive],
    ['ical', 'ic', positive],
    ['ful', '', positive],
    ['ness', '', positive],
  ]);

const gt1 = (s: string): boolean => measure(s) > 1;
const step4 = (w: string): string =>
  applyRules(w, [
    ['al', '', gt1], ['ance', '', gt1], ['ence', '', gt1], ['er', '', gt1], ['ic', '', gt1], ['able', '', gt1],
    ['ible', '', gt1], ['ant', '', gt1], ['ement', '', gt1], ['ment', '', gt1], ['ent', '', gt1],
    ['ion', '', (s) => measure(s) > 1 && (s.endsWith('s') || s.endsWith('t'))],
    ['ou', '', gt1], ['ism', '', gt1], ['ate', '', gt1], ['iti', '', gt1], ['ous', '', gt1], ['ive', '', gt1], ['ize', '', gt1],
  ]);

function step5a(w: string): string {
  if (!w.endsWith('e')) return w;
  const stem = w.slice(0, -1);
  const m = measure(stem);
  return m > 1 || (m === 1 && !endsCvc(stem)) ? stem : w;
}

const step5b = (w: string): string => applyRules(w, [['ll', 'l', () => measure(w.slice(0, -1)) > 1]]);

export function porterStem(word: string): string {
  const w = word.toLowerCase();
  const irregular = IRREGULAR[w];
  if (irregular !== undefined) return irregular;
  if (w.length <= 2) return w;
  return step5b(step5a(step4(step3(step2(step1c(step1b(step1a(w))))))));
}
