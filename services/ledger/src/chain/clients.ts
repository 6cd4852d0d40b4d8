/**
 * viem clients for whichever EVM chain the ledger is pointed at: anvil by default, any chain by
 * RPC URL and chain id. Private keys enter here and go no further than viem's local account;
 * nothing in this module logs or returns them.
 */
import { createPublicClient, createWalletClient, defineChain, http, type Chain, type Hex, type PublicClient, type Transport, type WalletClient, type Account } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

export interface ChainEndpoint {
  readonly rpcUrl: string;
  readonly chainId: number;
  /** How often viem polls for receipts and blocks; 4 s suits a public chain, 50 ms anvil. */
  readonly pollingIntervalMs?: number;
}

export type LedgerPublicClient = PublicClient<Transport, Chain>;
export type LedgerWalletClient = WalletClient<Transport, Chain, Account>;

export function chainOf(endpoint: ChainEndpoint): Chain {
  return defineChain({
    id: endpoint.chainId,
    name: `chain-${endpoint.chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [endpoint.rpcUrl] } },
  });
}

function pollingInterval(endpoint: ChainEndpoint): number {
  return endpoint.pollingIntervalMs ?? (isLocal(endpoint.rpcUrl) ? 50 : 4_000);
}

function isLocal(rpcUrl: string): boolean {
  return /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/.test(rpcUrl);
}

export function publicClientFor(endpoint: ChainEndpoint): LedgerPublicClient {
  return createPublicClient({
    chain: chainOf(endpoint),
    transport: http(endpoint.rpcUrl, { retryCount: 0, timeout: 10_000 }),
    pollingInterval: pollingInterval(endpoint),
  });
}

export function walletClientFor(endpoint: ChainEndpoint, privateKey: Hex): LedgerWalletClient {
  return createWalletClient({
    account: privateKeyToAccount(privateKey),
    chain: chainOf(endpoint),
    transport: http(endpoint.rpcUrl, { retryCount: 0, timeout: 10_000 }),
    pollingInterval: pollingInterval(endpoint),
  });
}
