import { pageRank, type Graph } from './page-rank';

const KEYWORD_COUNT = 8;
// Terms this close in a sentence (after stopwords are gone) are linked.
const WINDOW = 3;

/**
 * TextRank over words: terms are nodes, co-occurrence within a few words links
 * them, and the terms most connected to other well-connected terms are the
 * document's topics. The score is weighed by how often the term occurs
 * (log2(1 + count)), which settles the near-ties TextRank leaves in short
 * texts in favour of the repeated subject. Numbers and words under three
 * letters are left out; each keyword is shown in its most frequent written
 * form.
 */
export function topKeywords(sentenceTerms: readonly Int32Array[], display: readonly string[], count = KEYWORD_COUNT): string[] {
  const eligible = display.map((word) => word.length >= 3 && !/\p{N}/u.test(word));
  const links = new Map<number, Map<number, number>>();
  const firstSeen = new Map<number, number>();
  const occurrences = new Map<number, number>();
  const link = (a: number, b: number) => {
    const row = links.get(a) ?? new Map<number, number>();
    row.set(b, (row.get(b) ?? 0) + 1);
    links.set(a, row);
  };
  let position = 0;
  for (const ids of sentenceTerms) {
    const terms = Array.from(ids).filter((id) => eligible[id]);
    terms.forEach((a, i) => {
      if (!firstSeen.has(a)) firstSeen.set(a, position++);
      occurrences.set(a, (occurrences.get(a) ?? 0) + 1);
      for (let j = i + 1; j < Math.min(terms.length, i + WINDOW); j++) {
        const b = terms[j]!;
        if (a === b) continue;
        link(a, b);
        link(b, a);
      }
    });
  }
  const nodes = [...firstSeen.keys()];
  const index = new Map(nodes.map((id, i) => [id, i]));
  const graph: Graph = nodes.map((id) => [...(links.get(id) ?? [])].map(([other, w]) => [index.get(other)!, w] as const));
  const scores = pageRank(graph);
  return nodes
    .map((id, i) => ({ id, score: scores[i]! * Math.log2(1 + occurrences.get(id)!), first: firstSeen.get(id)! }))
    .sort((a, b) => b.score - a.score || a.first - b.first)
    .slice(0, count)
    .map(({ id }) => display[id]!);
}
