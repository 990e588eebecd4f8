import { detectAll } from 'tinyld/light';
import { stopwordsFor } from './stopwords';

/** Enough text for a stable guess; detection cost grows with the sample. */
const SAMPLE_CHARACTERS = 900;
/** Below this many letters a guess is noise ("OK.", a list of names). */
const MIN_LETTERS = 20;
/** The n-gram detector's best few guesses are put to the stopword vote. */
const GUESSES = 3;
/** Share of letters in a script that settles a CJK language without the detector. */
const SCRIPT_SHARE = 0.3;

/**
 * The document's language as an ISO 639-1 code (`en`, `de`, `zh`, `ja`…), or
 * `und` when the text is too short. Chinese, Japanese and Korean are told by
 * their scripts (kana is Japanese, hangul Korean, han alone Chinese). Other
 * languages: `tinyld/light` (an n-gram detector of about 70 KB) proposes its
 * best three, and the one whose stopwords cover most of the sample's words
 * wins: on the 600 English dev stories the detector alone says German,
 * Italian or Hebrew for 5 of them, while function words are the surest sign
 * of a language in running text.
 */
export function detectLanguage(text: string): string {
  const sample = sampleOf(text);
  const letters = sample.match(/\p{L}/gu)?.length ?? 0;
  if (letters < MIN_LETTERS) return 'und';
  const kana = sample.match(/[\u3040-\u30ff]/g)?.length ?? 0;
  const hangul = sample.match(/[\uac00-\ud7af\u1100-\u11ff]/g)?.length ?? 0;
  const han = sample.match(/\p{Script=Han}/gu)?.length ?? 0;
  if (kana > 0.05 * letters && kana + han > SCRIPT_SHARE * letters) return 'ja';
  if (hangul > SCRIPT_SHARE * letters) return 'ko';
  if (han > SCRIPT_SHARE * letters) return 'zh';

  const guesses = detectAll(sample)
    .slice(0, GUESSES)
    .map((g) => g.lang);
  if (guesses.length === 0) return 'und';
  const words = sample.toLowerCase().match(/\p{L}+(?:['’]\p{L}+)?/gu) ?? [];
  let best = guesses[0]!;
  let bestCoverage = -1;
  for (const language of guesses) {
    const stopwords = stopwordsFor(language);
    const coverage = stopwords.size === 0 ? 0 : words.filter((w) => stopwords.has(w)).length / words.length;
    if (coverage > bestCoverage) [best, bestCoverage] = [language, coverage];
  }
  return best;
}

/** The start and the middle: a quoted title or a reference list in one language must not decide alone. */
function sampleOf(text: string): string {
  if (text.length <= SAMPLE_CHARACTERS) return text;
  const half = Math.floor(SAMPLE_CHARACTERS / 2);
  const middle = Math.floor(text.length / 2);
  return `${text.slice(0, half)} ${text.slice(middle, middle + half)}`;
}

/** Chinese, Japanese and Korean: short words (two syllables or characters are a word), no capital letters. */
export function isCjk(language: string): boolean {
  return language === 'zh' || language === 'ja' || language === 'ko';
}

/** Chinese and Japanese: words are not separated by spaces and sentences end in full-width marks. */
export function writesWithoutSpaces(language: string): boolean {
  return language === 'zh' || language === 'ja';
}
