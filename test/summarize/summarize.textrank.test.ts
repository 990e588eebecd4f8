import { pageRank } from '../../lambda/core/summarize/page-rank';
import { splitSentences } from '../../lambda/core/summarize/split-sentences';
import { stem } from '../../lambda/core/summarize/stem';
import { termsOf, wordsOf } from '../../lambda/core/summarize/tokenize';

describe('splitSentences', () => {
  it('joins soft-wrapped lines and keeps blocks, headings and list items apart', () => {
    const text = [
      'Field Notes',
      'The heron colony on the north shore grew again this year. Volunteers counted',
      '64 active nests in April, twice as many as in the first survey of the marsh,',
      'and saw the first chicks in May.',
      '',
      'Next steps',
      '- count again in spring',
      '- survey the frogs',
      '',
      'What changed? Water levels rose!',
    ].join('\n');
    expect(splitSentences(text)).toEqual([
      'Field Notes',
      'The heron colony on the north shore grew again this year.',
      'Volunteers counted 64 active nests in April, twice as many as in the first survey of the marsh, and saw the first chicks in May.',
      'Next steps',
      'count again in spring',
      'survey the frogs',
      'What changed?',
      'Water levels rose!',
    ]);
  });

  it('cuts a very long paragraph without losing or splitting a sentence', () => {
    const sentences = Array.from({ length: 3_000 }, (_, i) => `Line ${i} of the log records a routine reading near gauge ${i % 17}.`);
    expect(splitSentences(sentences.join(' '))).toEqual(sentences);
  });

  it('cuts an unpunctuated run into bounded pieces', () => {
    const run = Array.from({ length: 20_000 }, (_, i) => `w${i}`).join(' ');
    const pieces = splitSentences(run);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join(' ')).toBe(run);
  });
});

describe('terms', () => {
  it('folds inflections and drops stopwords and numbers', () => {
    expect(termsOf(wordsOf("The keepers' lighthouses were warning ships: 1822 and the keeper warned them again.")).map((t) => t.term)).toEqual([
      'keeper',
      'lighthouse',
      'warn',
      'ship',
      'keeper',
      'warn',
    ]);
    expect(['bakes', 'baking', 'baked', 'bake'].map(stem)).toEqual(['bake', 'bake', 'bake', 'bake']);
    expect(['hopping', 'ponies', 'caresses', 'agreed', 'filing'].map(stem)).toEqual(['hop', 'poni', 'caress', 'agree', 'file']);
  });
});

describe('pageRank', () => {
  it('ranks the hub of a star highest, sums to 1 and converges', () => {
    const star = [
      [
        [1, 1],
        [2, 1],
        [3, 1],
      ],
      [[0, 1]],
      [[0, 1]],
      [[0, 1]],
    ] as const;
    const scores = pageRank(star);
    expect(scores[0]).toBeGreaterThan(scores[1]! * 2);
    expect([...scores].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    // The fixed point: hub = 0.15/4 + 0.85 * (sum of the leaves), leaf = 0.15/4 + 0.85 * hub/3.
    expect(scores[0]! - (0.15 / 4 + 0.85 * (scores[1]! + scores[2]! + scores[3]!))).toBeCloseTo(0, 5);
  });

  it('gives isolated nodes their teleport share', () => {
    const scores = pageRank([[], [], []], { teleport: [2, 1, 1] });
    expect([...scores].map((s) => Number(s.toFixed(6)))).toEqual([0.5, 0.25, 0.25]);
  });
});
