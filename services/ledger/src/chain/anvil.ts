/**
 * A real local EVM chain for tests, benchmarks and the one-command stack: anvil (Foundry), taken
 * from the npm package `@foundry-rs/anvil`, so nothing is downloaded at run time.
 *
 * ```ts
 * const chain = await startAnvil({ blockTimeMs: 500 });
 * chain.rpcUrl;          // http://127.0.0.1:<free port>
 * chain.privateKeys[0];  // funded dev key (anvil's well-known test mnemonic: never use on a real chain)
 * await chain.restart(); // same port; state kept only when `stateFile` was given
 * await chain.stop();
 * ```
 *
 * Without `stateFile` a restart is a brand-new chain (block 0, no contracts): the ledger must
 * notice its distributor is gone rather than post blindly. With `stateFile`, anvil dumps its state
 * on exit and loads it on start (`--state`), which is how the stack survives a restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { toHex, type Address, type Hex } from 'viem';
import { mnemonicToAccount } from 'viem/accounts';

/** anvil's default mnemonic: its dev accounts are public knowledge. Local chains only. */
const ANVIL_MNEMONIC = 'test test test test test test test test test test test junk';
const ACCOUNT_COUNT = 10;

export interface StartAnvilOptions {
  /** Port to listen on (127.0.0.1); a free one when omitted. */
  readonly port?: number;
  /** Interval mining every `blockTimeMs` ms; omitted = a block per transaction (automine). */
  readonly blockTimeMs?: number;
  /** Chain id; anvil's 31337 when omitted. */
  readonly chainId?: number;
  /** File the chain state is loaded from on start and dumped to on stop (`anvil --state`). */
  readonly stateFile?: string;
  /** Start with mining off (`--no-mining`): transactions wait in the mempool until `evm_mine`. */
  readonly noMining?: boolean;
  /** Milliseconds to wait for the RPC to answer. */
  readonly startTimeoutMs?: number;
}

export interface AnvilChain {
  readonly rpcUrl: string;
  readonly port: number;
  readonly chainId: number;
  /** Dev accounts, funded with 10,000 ether each; index i belongs to privateKeys[i]. */
  readonly accounts: readonly Address[];
  readonly privateKeys: readonly Hex[];
  /** Stops the chain (SIGTERM, so `stateFile` is written). Idempotent. */
  stop(): Promise<void>;
  /** Stops and starts again on the same port with the same options. */
  restart(): Promise<void>;
}

export class AnvilStartError extends Error {
  override readonly name = 'AnvilStartError';
}

/** Path of the anvil binary shipped by the npm package for this platform. */
export function anvilBinary(): string {
  const require = createRequire(import.meta.url);
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`;
  try {
    return require.resolve(`${pkg}/bin/anvil`);
  } catch (cause) {
    throw new AnvilStartError(`anvil binary not found: ${pkg} is not installed (npm ci installs it with @foundry-rs/anvil)`, { cause });
  }
}

export async function startAnvil(options: StartAnvilOptions = {}): Promise<AnvilChain> {
  const port = options.port ?? (await freePort());
  const chainId = options.chainId ?? 31337;
  const rpcUrl = `http://127.0.0.1:${port}`;
  const binary = anvilBinary();
  const args = ['--host', '127.0.0.1', '--port', String(port), '--chain-id', String(chainId), '--accounts', String(ACCOUNT_COUNT), '--silent'];
  if (options.blockTimeMs !== undefined) args.push('--block-time', String(options.blockTimeMs / 1000));
  if (options.stateFile !== undefined) args.push('--state', options.stateFile);
  if (options.noMining) args.push('--no-mining');

  const keys = Array.from({ length: ACCOUNT_COUNT }, (_, i) => mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: i }));
  const accounts = keys.map((a) => a.address);
  const privateKeys = keys.map((a) => toHex(a.getHdKey().privateKey!));

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const killOnExit = (): void => void child?.kill('SIGKILL');

  const launch = async (): Promise<void> => {
    let output = '';
    const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout?.on('data', (c: Buffer) => (output = (output + c.toString('utf8')).slice(-8192)));
    proc.stderr?.on('data', (c: Buffer) => (output = (output + c.toString('utf8')).slice(-8192)));
    let gone = false;
    exited = new Promise((resolve) => {
      proc.once('exit', () => ((gone = true), resolve()));
      proc.once('error', (e) => ((gone = true), (output += e.message), resolve()));
    });
    process.once('exit', killOnExit);
    const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
    for (;;) {
      if (gone) throw new AnvilStartError(`anvil exited during start-up on port ${port}: ${output.trim()}`);
      if (await answers(rpcUrl)) return;
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new AnvilStartError(`anvil did not answer on ${rpcUrl} within ${options.startTimeoutMs ?? 15_000} ms: ${output.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const done = exited;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await done;
    clearTimeout(timer);
    process.removeListener('exit', killOnExit);
  };

  await launch();
  return {
    rpcUrl,
    port,
    chainId,
    accounts,
    privateKeys,
    stop,
    async restart() {
      await stop();
      await launch();
    },
  };
}

async function answers(rpcUrl: string): Promise<boolean> {
  try {
    const response = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      signal: AbortSignal.timeout(1_000),
    });
    return response.ok;
  } catch {
    return false;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port assigned'))));
    });
  });
}
