/** An undirected weighted graph as adjacency lists: `edges[i]` holds [neighbour, weight] pairs. */
export type Graph = ReadonlyArray<ReadonlyArray<readonly [number, number]>>;

export interface PageRankOptions {
  damping?: number;
  tolerance?: number;
  maxIterations?: number;
  /** Where a random surfer restarts; uniform when omitted. Need not be normalized. */
  teleport?: readonly number[];
}

/**
 * Weighted PageRank by power iteration, stopping once no score moves by more
 * than `tolerance` (L1 over all nodes). A node without edges passes its score
 * on through the teleport distribution, so scores always sum to 1.
 */
export function pageRank(graph: Graph, { damping = 0.85, tolerance = 1e-6, maxIterations = 100, teleport }: PageRankOptions = {}): Float64Array {
  const n = graph.length;
  if (n === 0) return new Float64Array(0);
  const restart = normalized(teleport ?? new Array<number>(n).fill(1));
  const outWeight = graph.map((edges) => edges.reduce((s, [, w]) => s + w, 0));
  let scores = Float64Array.from(restart);
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    const next = new Float64Array(n);
    let dangling = 0;
    for (let i = 0; i < n; i++) {
      if (outWeight[i] === 0) {
        dangling += scores[i]!;
        continue;
      }
      const share = scores[i]! / outWeight[i]!;
      for (const [j, w] of graph[i]!) next[j]! += share * w;
    }
    let delta = 0;
    for (let i = 0; i < n; i++) {
      next[i] = damping * (next[i]! + dangling * restart[i]!) + (1 - damping) * restart[i]!;
      delta += Math.abs(next[i]! - scores[i]!);
    }
    scores = next;
    if (delta < tolerance) break;
  }
  return scores;
}

function normalized(values: readonly number[]): Float64Array {
  const total = values.reduce((s, v) => s + v, 0);
  return Float64Array.from(values, (v) => (total > 0 ? v / total : 1 / values.length));
}
