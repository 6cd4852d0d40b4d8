/**
 * The ledger service's settings (environment variables, checked at start-up).
 *
 * Chain: CHAIN_RPC_URL, CHAIN_ID, POSTER_PRIVATE_KEY and DISTRIBUTOR_ADDRESS point the ledger at
 * any EVM chain; leave CHAIN_RPC_URL unset for the embedded anvil (state in LEDGER_DATA_DIR).
 * POSTER_PRIVATE_KEY is a secret: it is read here, handed to viem's local account, and never
 * logged (the logger also redacts `*privateKey*` fields).
 */
import { z } from 'zod';
import { EvmAddressSchema } from '@longtail/contracts';
import { baseConfigSchema, databaseConfigSchema } from '@longtail/service';
import type { Address, Hex } from 'viem';

const privateKey = z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'expected 0x + 64 hex digits');

export const ledgerConfigSchema = baseConfigSchema.extend({
  ...databaseConfigSchema.shape,
  LEDGER_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).default('ledger'),
  /** JSON-RPC URL of the chain; unset = embedded anvil. */
  CHAIN_RPC_URL: z.url({ protocol: /^https?$/ }).optional(),
  CHAIN_ID: z.coerce.number().int().min(1).optional(),
  POSTER_PRIVATE_KEY: privateKey.optional(),
  DISTRIBUTOR_ADDRESS: EvmAddressSchema.optional(),
  /** Block the distributor was deployed in (where RootPosted log searches start). */
  DISTRIBUTOR_FROM_BLOCK: z.coerce.bigint().nonnegative().default(0n),
  /** Blocks a posted root must be under before `ledger.payout.posted` is published. */
  CONFIRMATIONS: z.coerce.number().int().min(1).max(1000).default(1),
  /** Blocks a postRoot may stay pending before it is re-sent with higher fees. */
  STUCK_AFTER_BLOCKS: z.coerce.number().int().min(1).default(3),
  FEE_BUMP_PERCENT: z.coerce.number().int().min(110).max(1000).default(125),
  POSTER_POLL_MS: z.coerce.number().int().min(50).default(1000),
  /** Embedded chain: where anvil keeps its state and the deployed addresses. */
  LEDGER_DATA_DIR: z.string().default('.data/ledger'),
  /** Embedded chain: anvil port (0 = any free port) and interval mining (0 = a block per transaction). */
  LEDGER_ANVIL_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  LEDGER_ANVIL_BLOCK_MS: z.coerce.number().int().min(0).default(0),
});

export type LedgerConfig = z.infer<typeof ledgerConfigSchema>;

/** An external chain (all four settings) or the embedded one. */
export type ChainSettings =
  | { readonly kind: 'external'; readonly rpcUrl: string; readonly chainId: number; readonly posterKey: Hex; readonly distributor: Address; readonly fromBlock: bigint }
  | { readonly kind: 'embedded'; readonly dataDir: string; readonly port?: number; readonly blockTimeMs?: number };

export interface LedgerOptions {
  readonly natsUrl: string;
  readonly databaseUrl: string;
  readonly schema: string;
  readonly chain: ChainSettings;
  readonly confirmations: number;
  readonly stuckAfterBlocks: number;
  readonly feeBumpPercent: number;
  readonly pollIntervalMs: number;
  /** Durable consumer name (tests run several ledgers on one NATS server). Default `ledger-epochs`. */
  readonly durable?: string;
}

export class LedgerConfigError extends Error {
  override readonly name = 'LedgerConfigError';
}

export function optionsFromConfig(config: LedgerConfig): LedgerOptions {
  const external = [config.CHAIN_RPC_URL, config.CHAIN_ID, config.POSTER_PRIVATE_KEY, config.DISTRIBUTOR_ADDRESS];
  const given = external.filter((v) => v !== undefined).length;
  if (given > 0 && given < external.length) {
    throw new LedgerConfigError(
      'config: CHAIN_RPC_URL, CHAIN_ID, POSTER_PRIVATE_KEY and DISTRIBUTOR_ADDRESS go together: set all four for an external chain, or none for the embedded anvil',
    );
  }
  const chain: ChainSettings =
    given === external.length
      ? {
          kind: 'external',
          rpcUrl: config.CHAIN_RPC_URL!,
          chainId: config.CHAIN_ID!,
          posterKey: config.POSTER_PRIVATE_KEY! as Hex,
          distributor: config.DISTRIBUTOR_ADDRESS! as Address,
          fromBlock: config.DISTRIBUTOR_FROM_BLOCK,
        }
      : {
          kind: 'embedded',
          dataDir: config.LEDGER_DATA_DIR,
          ...(config.LEDGER_ANVIL_PORT ? { port: config.LEDGER_ANVIL_PORT } : {}),
          ...(config.LEDGER_ANVIL_BLOCK_MS ? { blockTimeMs: config.LEDGER_ANVIL_BLOCK_MS } : {}),
        };
  return {
    natsUrl: config.NATS_URL,
    databaseUrl: config.DATABASE_URL,
    schema: config.LEDGER_SCHEMA,
    chain,
    confirmations: config.CONFIRMATIONS,
    stuckAfterBlocks: config.STUCK_AFTER_BLOCKS,
    feeBumpPercent: config.FEE_BUMP_PERCENT,
    pollIntervalMs: config.POSTER_POLL_MS,
  };
}
