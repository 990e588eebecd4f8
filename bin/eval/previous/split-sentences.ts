/*
 * Intl.Segmenter's cost grows faster than linearly with the length of the
 * string it walks (300 KB takes seconds), so it is only ever given one block,
 * and blocks are cut into pieces of at most this many characters first.
 */
const MAX_SEGMENT_INPUT = 4_000;

const segmenter = new Intl.Segmenter('en', { granularity: 'sentence' });

// ICU breaks after any period followed by a capital: "Dr. | Smith", "Jan. | 5".
const ABBREVIATION =
  /(?:^|[\s(])(?:Mr|Mrs|Ms|Mx|Dr|Prof|Sr|Jr|St|Mt|Ft|Gen|Col|Capt|Cpt|Lt|Sgt|Rep|Sen|Gov|Pres|Rev|Hon|Fr|Messrs|vs|cf|al|approx|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|e\.g|i\.e)\.$/i;
const INITIAL = /(?:^|[\s(])\p{Lu}\.$/u;
// Only before a number: "No. 5", but "No. It is not." is two sentences.
const NUMBERED = /(?:^|[\s(])(?:No|Nos|Vol|pp|p|Fig|Figs|Ch|Sec|Eq|Art)\.$/i;
const HAS_WORD = /[\p{L}\p{N}]/u;
const LIST_MARKER = /^(?:[-*+•◦▪‣–]|\(?\d{1,3}[.)])\s+/;

/**
 * Sentences of normalized text, in order, each with its whitespace collapsed.
 * Blocks (separated by blank lines) never share a sentence, so a heading or a
 * list item is a sentence of its own even without a full stop.
 */
export function splitSentences(text: string): string[] {
  const sentences: string[] = [];
  for (const block of splitBlocks(text)) {
    for (const piece of cutLongBlock(block)) sentences.push(...segmentBlock(piece));
  }
  return sentences;
}

/**
 * Blank lines separate blocks. Within a paragraph a line starting with a
 * bullet starts a block, and a short line without closing punctuation
 * followed by a capitalized one ends a block: a title or heading in plain
 * text or a PDF (whose text keeps no blank lines) must not become the start
 * of the next sentence.
 */
function splitBlocks(text: string): string[] {
  const shortLine = 0.6 * medianLineLength(text);
  const blocks: string[] = [];
  for (const paragraph of text.split(/\n\s*\n/)) {
    let current: string[] = [];
    const close = () => {
      if (current.length > 0) blocks.push(current.join(' '));
      current = [];
    };
    const lines = paragraph.split('\n');
    lines.forEach((line, i) => {
      if (LIST_MARKER.test(line)) close();
      current.push(line.replace(LIST_MARKER, ''));
      const next = lines[i + 1];
      if (next !== undefined && line.length < shortLine && !/[.!?…,;:\-–—]["'”’)\]]*$/.test(line) && /^["'“‘(]?[\p{Lu}\p{N}]/u.test(next)) close();
    });
    close();
  }
  return blocks.map((b) => b.replace(/\s+/g, ' ').trim()).filter((b) => b.length > 0);
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
    const ends = [...window.matchAll(/[.!?…]["'”’)\]]* /g)];
    const lastEnd = ends.length > 0 ? ends[ends.length - 1]!.index! + ends[ends.length - 1]![0].length : -1;
    const lastSpace = window.lastIndexOf(' ');
    const cut = lastEnd > MAX_SEGMENT_INPUT / 2 ? lastEnd : lastSpace > 0 ? lastSpace + 1 : MAX_SEGMENT_INPUT;
    pieces.push(rest.slice(0, cut).trim());
    rest = rest.slice(cut);
  }
  pieces.push(rest.trim());
  return pieces.filter((p) => p.length > 0);
}

function segmentBlock(block: string): string[] {
  const out: string[] = [];
  for (const { segment } of segmenter.segment(block)) {
    const sentence = segment.trim();
    if (sentence === '') continue;
    const previous = out[out.length - 1];
    if (previous !== undefined && continuesPrevious(previous, sentence)) out[out.length - 1] = `${previous} ${sentence}`;
    else out.push(sentence);
  }
  return out.filter((s) => HAS_WORD.test(s));
}

function continuesPrevious(previous: string, next: string): boolean {
  return (
    ABBREVIATION.test(previous) ||
    INITIAL.test(previous) ||
    (NUMBERED.test(previous) && /^\d/.test(next)) ||
    !HAS_WORD.test(next)
  );
}
