/**
 * SplitPolicy: how a fee is shared between the GPU operator, the adapter creator, the Datanet
 * contributors and the protocol treasury, in basis points that sum to 10,000.
 *
 * Policies are governance facts (`attribution.policy.set`): each has a version (1, 2, ...) and the
 * epoch it may take effect from. Which policy an epoch uses is fixed in the INFERENCE stream by the
 * marker that opens it (see epochs/epoch.ts), so a policy change replays exactly.
 */

export const BPS_WHOLE = 10_000;

export interface SplitPolicy {
  readonly version: number;
  /** First epoch the policy may apply to. */
  readonly effectiveFromEpoch: number;
  readonly operatorBps: number;
  readonly creatorBps: number;
  readonly contributorsBps: number;
  readonly treasuryBps: number;
  /** Lowercase EVM address of the protocol treasury. */
  readonly treasuryAddress: string;
}

export class InvalidSplitPolicy extends Error {
  override readonly name = 'InvalidSplitPolicy';
}

/** @throws InvalidSplitPolicy when the basis points are not integers in 0..10000 summing to 10000. */
export function assertSplitPolicy(policy: SplitPolicy): void {
  const parts = [policy.operatorBps, policy.creatorBps, policy.contributorsBps, policy.treasuryBps];
  for (const bps of parts) {
    if (!Number.isInteger(bps) || bps < 0 || bps > BPS_WHOLE)
      throw new InvalidSplitPolicy(`basis points must be integers in 0..10000, got ${bps}`);
  }
  const sum = parts.reduce((a, b) => a + b, 0);
  if (sum !== BPS_WHOLE)
    throw new InvalidSplitPolicy(`policy v${policy.version}: basis points must sum to 10000, got ${sum}`);
  if (!Number.isInteger(policy.version) || policy.version < 1)
    throw new InvalidSplitPolicy('version must be an integer >= 1');
  if (!Number.isInteger(policy.effectiveFromEpoch) || policy.effectiveFromEpoch < 0) {
    throw new InvalidSplitPolicy('effectiveFromEpoch must be an integer >= 0');
  }
  if (policy.version === 1 && policy.effectiveFromEpoch !== 0)
    throw new InvalidSplitPolicy('policy version 1 governs the first epoch: effectiveFromEpoch must be 0');
}
