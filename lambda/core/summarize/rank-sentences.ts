import type { AnalyzedSentence } from './analyze-text';
import { checkpoint } from './checkpoint';
import { pageRank } from './page-rank';
import { centroid, dot, tfidfVectors, type SparseVector } from './sparse-vector';

/**
 * The similarity graph is quadratic in its nodes; past this many candidate
 * sentences only those closest to the document's centroid take part. That
 * keeps a 2 MB document to a few hundred thousand sparse dot products while
 * still letting a sentence from anywhere in it win.
 */
const MAX_GRAPH_SENTENCES = 500;
/** Sentences this similar say the same thing; a summary carries only one of them. */
const DUPLICATE_SIMILARITY = 0.8;
/**
 * Redundancy: a sentence's score is cut by this share of its similarity to
 * the closest sentence already chosen (maximal marginal relevance), so a
 * summary does not spend two of its sentences on one fact.
 */
const REDUNDANCY = 0.5;
/** Centrality floor: a lead sentence that shares few words with the rest still keeps a fifth of its prior. */
const CENTRALITY_FLOOR = 0.2;
/**
 * Position prior exp(-i/τ) over the candidates in document order. News
 * states its point in the first few sentences (the inverted pyramid): τ = 5
 * sentences. Documents with headings or lists (manuals, READMEs, reports)
 * spread their point: τ = a quarter of the candidates, at least 10.
 */
const LEAD_DECAY_NEWS = 5;
const LEAD_DECAY_MIN_OTHER = 10;
const ROWS_PER_SLICE = 50;

export type Genre = 'news' | 'structured';

/**
 * Scores candidates by centrality times a position prior and picks them one
 * by one with a redundancy penalty. Centrality is TextRank: candidate
 * sentences are nodes, TF-IDF cosine similarity weighs the edges, PageRank
 * (damping 0.85, to convergence) scores them, scaled to the best. Returns up
 * to `count` indices into `sentences`, in document order.
 */
export async function rankSentences(
  sentences: readonly AnalyzedSentence[],
  candidates: readonly number[],
  count: number,
  termCount: number,
  genre: Genre,
  signal?: AbortSignal,
): Promise<number[]> {
  if (candidates.length <= count) return [...candidates];
  const vectors = tfidfVectors(sentences.map((s) => s.termIds), termCount);
  await checkpoint(signal);
  const nodes = mostCentral(candidates, vectors, MAX_GRAPH_SENTENCES);
  await checkpoint(signal);

  const edges: Array<Array<[number, number]>> = nodes.map(() => []);
  for (let a = 0; a < nodes.length; a++) {
    if (a % ROWS_PER_SLICE === 0) await checkpoint(signal);
    for (let b = a + 1; b < nodes.length; b++) {
      const similarity = dot(vectors[nodes[a]!]!, vectors[nodes[b]!]!);
      if (similarity <= 0) continue;
      edges[a]!.push([b, similarity]);
      edges[b]!.push([a, similarity]);
    }
  }
  const centrality = pageRank(edges, { damping: 0.85, tolerance: 1e-6, maxIterations: 200 });
  await checkpoint(signal);

  const best = Math.max(...centrality);
  const ordinal = new Map(candidates.map((index, i) => [index, i]));
  const decay = genre === 'news' ? LEAD_DECAY_NEWS : Math.max(LEAD_DECAY_MIN_OTHER, candidates.length / 4);
  const scores = nodes.map((index, i) => Math.exp(-ordinal.get(index)! / decay) * (CENTRALITY_FLOOR + centrality[i]! / best));
  return pickDistinct(nodes, scores, vectors, count).sort((a, b) => a - b);
}

function mostCentral(candidates: readonly number[], vectors: readonly SparseVector[], limit: number): number[] {
  if (candidates.length <= limit) return [...candidates];
  const center = centroid(candidates.map((i) => vectors[i]!));
  return candidates
    .map((index) => ({ index, closeness: dot(vectors[index]!, center) }))
    .sort((a, b) => b.closeness - a.closeness || a.index - b.index)
    .slice(0, limit)
    .map((c) => c.index)
    .sort((a, b) => a - b);
}

/** Greedy maximal marginal relevance; near-duplicates only when nothing else is left. */
function pickDistinct(nodes: readonly number[], scores: readonly number[], vectors: readonly SparseVector[], count: number): number[] {
  const chosen: number[] = [];
  const duplicates: number[] = [];
  const open = new Set(nodes.map((_, i) => i));
  while (chosen.length < count && open.size > 0) {
    let pick = -1;
    let pickScore = -Infinity;
    for (const i of open) {
      const closest = chosen.reduce((m, c) => Math.max(m, dot(vectors[c]!, vectors[nodes[i]!]!)), 0);
      if (closest > DUPLICATE_SIMILARITY) {
        open.delete(i);
        duplicates.push(nodes[i]!);
        continue;
      }
      const score = scores[i]! * (1 - REDUNDANCY * closest);
      if (score > pickScore || (score === pickScore && nodes[i]! < nodes[pick]!)) [pick, pickScore] = [i, score];
    }
    if (pick < 0) break;
    open.delete(pick);
    chosen.push(nodes[pick]!);
  }
  return [...chosen, ...duplicates.slice(0, count - chosen.length)];
}
