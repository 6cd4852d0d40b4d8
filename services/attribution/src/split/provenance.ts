/**
 * Provenance: who stands behind one inference's fee. The GPU operator comes from the inference
 * event, the creator and training mix from the adapter's registration, and the contributors and
 * their weights from the Datanet snapshots it names. All of these are immutable facts, so a fee's
 * split never depends on when it is computed.
 */

/** A frozen Datanet snapshot: its contributors (each account once) and their weights. */
export interface SnapshotWeights {
  readonly datanetId: string;
  readonly snapshotId: string;
  /** Sorted by account ascending (lowercase addresses), each account once, weights > 0. */
  readonly contributors: readonly ContributorWeight[];
  /** Σ contributors' weights. */
  readonly totalWeight: bigint;
}

export interface ContributorWeight {
  readonly account: string;
  readonly weight: bigint;
}

/** One snapshot in an adapter's training mix. */
export interface TrainingSource {
  readonly snapshot: SnapshotWeights;
  /** Basis points of the contributors' share that this snapshot's contributors split. */
  readonly mixWeightBps: number;
}

export interface Provenance {
  /** Lowercase address of the GPU operator that served the inference. */
  readonly operator: string;
  /** Lowercase address of the adapter creator. */
  readonly creator: string;
  /** The adapter's training mix; empty when it names no Datanet. */
  readonly trainedOn: readonly TrainingSource[];
}

/** Key of a snapshot across Datanets (snapshot ids are unique within a Datanet only). */
export function snapshotKey(datanetId: string, snapshotId: string): string {
  return `${datanetId}@${snapshotId}`;
}

/** Builds snapshot weights from (account, weight) pairs: merges repeats, drops zero weights, sorts. */
export function snapshotWeights(
  datanetId: string,
  snapshotId: string,
  entries: Iterable<ContributorWeight>,
): SnapshotWeights {
  const byAccount = new Map<string, bigint>();
  for (const { account, weight } of entries) byAccount.set(account, (byAccount.get(account) ?? 0n) + weight);
  const contributors = [...byAccount]
    .filter(([, weight]) => weight > 0n)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([account, weight]) => ({ account, weight }));
  const totalWeight = contributors.reduce((sum, c) => sum + c.weight, 0n);
  return { datanetId, snapshotId, contributors, totalWeight };
}
