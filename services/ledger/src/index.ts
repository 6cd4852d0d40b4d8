/**
 * @longtail/ledger: cumulative Merkle payouts on an EVM chain. What other code (the one-command
 * stack, benchmarks, tools) may use; everything else stays internal. Services never import this
 * package: they talk to the ledger over NATS (`longtail.ledger.*`) and the LEDGER stream.
 */

// A local chain and the contracts.
export { startAnvil, anvilBinary, AnvilStartError, type AnvilChain, type StartAnvilOptions } from './chain/anvil.js';
export { deployLedgerContracts, MINTER_ROLE, POSTER_ROLE, type DeployLedgerOptions, type LedgerContracts } from './chain/deploy.js';
export { startEmbeddedChain, type EmbeddedChain } from './chain/embedded-chain.js';
export { cumulativeMerkleDistributorAbi, distributorCallAbi, longtailTokenAbi } from './chain/artifacts.js';

// The tree and proofs.
export { CumulativeTree, leafHash, verifyProof, EMPTY_ROOT, type CumulativeEntry, type CumulativeProof } from './tree/cumulative-tree.js';
export { CumulativeTreeError } from './tree/errors.js';

// The poster's pure core.
export { decide, bumpedFees, DEFAULT_POSTER_POLICY, type ChainView, type PayoutRow, type PosterAction, type PosterPolicy } from './payouts/decide.js';
export { PayoutHaltCode, PayoutHalted } from './payouts/errors.js';

// The service.
export { LedgerModule, type ResolvedChain } from './app/ledger.module.js';
export { ledgerConfigSchema, optionsFromConfig, type LedgerConfig, type LedgerOptions } from './app/ledger-config.js';
export type { AccountPayout, EpochPayoutStatus } from './queries/ledger-queries.js';

// Claiming.
export { claimPayout, readClaimInput, ClaimRefused, type ClaimInput, type ClaimOutcome } from './cli/claim.js';
