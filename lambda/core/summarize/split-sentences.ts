import { writesWithoutSpaces } from './language';

/*
 * Intl.Segmenter's cost grows faster than linearly with the length of the
 * string it walks (300 KB takes seconds), so it is only ever given one block,
 * and blocks are cut into pieces of at most this many characters first.
 */
const MAX_SEGMENT_INPUT = 4_000;
/**
 * A "sentence" longer than this with no sentence end inside is unpunctuated
 * text (a transcript, a chat log, a PDF table): it is cut into chunks of
 * about CHUNK_WORDS, at a comma or semicolon when one is near.
 */
const MAX_UNPUNCTUATED_WORDS = 80;
const CHUNK_WORDS = 40;
/** Same for scripts written without spaces, in characters. */
const MAX_UNPUNCTUATED_CJK = 200;
const CHUNK_CJK = 80;

export type SentenceKind =
  /** Ends in closing punctuation. */
  | 'sentence'
  /** An unpunctuated list item (a bullet or number in the text, `<li>` in HTML, `-` in Markdown). */
  | 'item'
  /** A lone unpunctuated block (a title, a heading), or a chunk of unpunctuated text. */
  | 'fragment';

export interface Sentence {
  text: string;
  kind: SentenceKind;
  /** Index of the block (paragraph, heading, list item) the sentence is in. */
  block: number;
}

const sentenceSegmenter = new Intl.Segmenter('en', { granularity: 'sentence' });

// ICU breaks after any period followed by a capital: "Dr. | Smith", "Jan. | 5", "z. | B.", "Sra. | López".
const ABBREVIATIONS: Record<string, string> = {
  en: 'Mr|Mrs|Ms|Mx|Dr|Prof|Sr|Jr|St|Mt|Ft|Gen|Col|Capt|Cpt|Lt|Sgt|Rep|Sen|Gov|Pres|Rev|Hon|Fr|Messrs|Inc|Ltd|Corp|Co|vs|cf|al|approx|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|e\\.g|i\\.e',
  de: 'Dr|Prof|Hr|Hrn|Fr|St|Nr|Str|Abs|Bd|Bsp|bzw|ca|vgl|usw|etc|evtl|ggf|inkl|exkl|zzgl|sog|Mio|Mrd|Jh|Tel|Jan|Feb|Mär|Apr|Jun|Jul|Aug|Sep|Sept|Okt|Nov|Dez|z\\.\\s?B|d\\.\\s?h|u\\.\\s?a|u\\.\\s?U|o\\.\\s?ä|s\\.\\s?o|s\\.\\s?u|i\\.\\s?d\\.\\s?R',
  fr: 'M|MM|Mme|Mmes|Mlle|Mlles|Me|Dr|Pr|St|Ste|av|apr|env|cf|etc|vol|chap|éd|janv|févr|avr|juil|sept|oct|nov|déc|p\\.\\s?ex|c\\.-à-d',
  es: 'Sr|Sra|Srta|Sres|Sras|Dr|Dra|Ud|Uds|Vd|Vds|Lic|Ing|Arq|Prof|pág|págs|núm|etc|aprox|tel|Avda|Av|Cía|ene|feb|abr|ago|sept|oct|nov|dic|EE|EE\\.\\s?UU|p\\.\\s?ej|S\\.\\s?A',
};
const abbreviationPattern = (language: string): RegExp =>
  new RegExp(`(?:^|[\\s(«“"'])(?:${ABBREVIATIONS[language] ?? ABBREVIATIONS.en})\\.$`, 'iu');
const ABBREVIATION: Readonly<Record<string, RegExp>> = Object.fromEntries(
  ['en', 'de', 'fr', 'es'].map((language) => [language, abbreviationPattern(language)]),
);
// Initials and dotted acronyms: "J. R. Smith", "J.P. Morgan", "U.S. troops". A lone lowercase letter: "z. B.", "p. ex.".
const INITIAL = /(?:^|[\s(«“"'])(?:\p{Lu}\.)+$|(?:^|[\s(])\p{Ll}\.$/u;
// Only before a number: "No. 5", "Nr. 5", but "No. It is not." is two sentences.
const NUMBERED = /(?:^|[\s(])(?:No|Nos|Nr|Vol|pp|p|S|Fig|Figs|Abb|Ch|Sec|Eq|Art|núm|n°)\.$/i;
const HAS_WORD = /[\p{L}\p{N}]/u;
// Bullets, numbered items and reference entries ("[12] Smith, J. …") start a block of their own.
const LIST_MARKER = /^(?:[-*+•◦▪‣–]|\(?\d{1,3}[.)]|\[\d{1,3}\])\s+/;
const REFERENCE_MARKER = /^\[\d{1,3}\]\s+/;
const CLOSED = /[.!?…。！？]["'”’»)\]」』）]*$/;
const CJK_CHAR = /[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]/;

/**
 * Sentences of normalized text, in order, each with its whitespace collapsed.
 * Blocks (separated by blank lines) never share a sentence, so a heading or a
 * list item is a sentence of its own even without a full stop.
 */
export function splitSentences(text: string, language = 'en'): string[] {
  return segmentText(text, language).map((s) => s.text);
}

/** Sentences with what they are: a sentence, a list item or a lone fragment. */
export function segmentText(text: string, language = 'en'): Sentence[] {
  const out: Sentence[] = [];
  splitBlocks(text).forEach(({ text: block, listItem }, b) => {
    for (const piece of cutLongBlock(block)) {
      for (const sentence of segmentBlock(piece, language)) {
        for (const chunk of chunkUnpunctuated(sentence, language)) {
          // A list item's text is an item when it is the whole item; chunks of unpunctuated text are fragments.
          const kind = CLOSED.test(chunk) ? 'sentence' : listItem && chunk === block ? 'item' : 'fragment';
          out.push({ text: chunk, kind, block: b });
        }
      }
    }
  });
  return out;
}

/**
 * Blank lines separate blocks. Within a paragraph a line starting with a
 * bullet, a number or a reference mark starts a block (PDF reference lists
 * otherwise glue every entry into one run-on), and a short line without
 * closing punctuation followed by a capitalized one ends a block: a title or
 * heading in plain text or a PDF (whose text keeps no blank lines) must not
 * become the start of the next sentence.
 */
function splitBlocks(text: string): Array<{ text: string; listItem: boolean }> {
  const shortLine = 0.6 * medianLineLength(text);
  const blocks: Array<{ text: string; listItem: boolean }> = [];
  for (const paragraph of text.split(/\n\s*\n/)) {
    let current: string[] = [];
    let listItem = false;
    const close = () => {
      if (current.length > 0) blocks.push({ text: current.join(' '), listItem });
      current = [];
      listItem = false;
    };
    const lines = paragraph.split('\n');
    lines.forEach((line, i) => {
      if (LIST_MARKER.test(line)) {
        close();
        listItem = true;
      }
      current.push(REFERENCE_MARKER.test(line) ? line : line.replace(LIST_MARKER, ''));
      const next = lines[i + 1];
      if (next !== undefined && line.length < shortLine && !/[.!?…,;:\-–—。！？、]["'”’)\]]*$/.test(line) && /^["'“‘(]?[\p{Lu}\p{N}]/u.test(next)) close();
    });
    close();
  }
  return blocks.map((b) => ({ text: b.text.replace(/\s+/g, ' ').trim(), listItem: b.listItem })).filter((b) => b.text.length > 0);
}

function medianLineLength(text: string): number {
  const lengths = text
    .split('\n')
    .map((l) => l.length)
    .filter((n) => n > 0)
    .sort((a, b) => a - b);
  return lengths.length > 0 ? lengths[Math.floor(lengths.length / 2)]! : 0;
}

/** Cuts after a sentence end near the limit when there is one, else at a space. */
function cutLongBlock(block: string): string[] {
  const pieces: string[] = [];
  let rest = block;
  while (rest.length > MAX_SEGMENT_INPUT) {
    const window = rest.slice(0, MAX_SEGMENT_INPUT);
    const ends = [...window.matchAll(/[.!?…]["'”’)\]]* |[。！？]/g)];
    const lastEnd = ends.length > 0 ? ends[ends.length - 1]!.index! + ends[ends.length - 1]![0].length : -1;
    const lastSpace = window.lastIndexOf(' ');
    const cut = lastEnd > MAX_SEGMENT_INPUT / 2 ? lastEnd : lastSpace > 0 ? lastSpace + 1 : MAX_SEGMENT_INPUT;
    pieces.push(rest.slice(0, cut).trim());
    rest = rest.slice(cut);
  }
  pieces.push(rest.trim());
  return pieces.filter((p) => p.length > 0);
}

function segmentBlock(block: string, language: string): string[] {
  const abbreviation = ABBREVIATION[language] ?? ABBREVIATION.en!;
  const out: string[] = [];
  let previousRaw = '';
  for (const { segment } of sentenceSegmenter.segment(block)) {
    const sentence = segment.trim();
    if (sentence === '') continue;
    const previous = out[out.length - 1];
    if (previous !== undefined && continuesPrevious(previous, previousRaw, sentence, abbreviation)) {
      // Keep the original spacing: a break inside a URL had none.
      out[out.length - 1] = /\s$/.test(previousRaw) ? `${previous} ${sentence}` : `${previous}${sentence}`;
      previousRaw = segment;
    } else {
      out.push(sentence);
      previousRaw = segment;
    }
  }
  return out.filter((s) => HAS_WORD.test(s));
}

function continuesPrevious(previous: string, previousRaw: string, next: string, abbreviation: RegExp): boolean {
  return (
    insideToken(previous, previousRaw, next) ||
    abbreviation.test(previous) ||
    INITIAL.test(previous) ||
    (NUMBERED.test(previous) && /^\d/.test(next)) ||
    !HAS_WORD.test(next)
  );
}

/**
 * ICU breaks after "?" even with no space after it: inside a URL
 * ("search?q=tide") or a name ("Yahoo!Japan"). Without a space, in
 * alphabetic text, the sentence has not ended. Full-width ends never have a
 * space after them and always end a sentence.
 */
function insideToken(previous: string, previousRaw: string, next: string): boolean {
  if (/\s$/.test(previousRaw)) return false;
  if (/[。！？]["'”’」』）]*$/.test(previous)) return false;
  return /[^\s]$/.test(previous) && /^[^\s]/.test(next) && !CJK_CHAR.test(next[0]!);
}

/** Unpunctuated text returned whole would be one "sentence" of hundreds of words: cut it into readable chunks. */
function chunkUnpunctuated(sentence: string, language: string): string[] {
  if (writesWithoutSpaces(language) || (!sentence.includes(' ') && CJK_CHAR.test(sentence.slice(0, 20)))) {
    if (sentence.length <= MAX_UNPUNCTUATED_CJK) return [sentence];
    return chunkBy([...sentence], CHUNK_CJK, (c) => /[、，；,;]/.test(c), '');
  }
  const words = sentence.split(' ');
  if (words.length <= MAX_UNPUNCTUATED_WORDS) return [sentence];
  return chunkBy(words, CHUNK_WORDS, (w) => /[,;:]$/.test(w), ' ');
}

/** Units in chunks of about `size`: a chunk ends after a soft break past half its size, else at the size. */
function chunkBy(units: readonly string[], size: number, softBreak: (unit: string) => boolean, joiner: string): string[] {
  const chunks: string[] = [];
  let current: string[] = [];
  for (const unit of units) {
    current.push(unit);
    if ((current.length >= size / 2 && softBreak(unit)) || current.length >= size * 1.5) {
      chunks.push(current.join(joiner));
      current = [];
    }
  }
  if (current.length > 0) {
    // A short tail joins the chunk before it.
    if (chunks.length > 0 && current.length < size / 4) chunks[chunks.length - 1] += joiner + current.join(joiner);
    else chunks.push(current.join(joiner));
  }
  return chunks;
}
