/**
 * Loads the Node-API addon `longtail_engine.node` (native/addon/addon.cpp, built by
 * native/scripts/build-addon.sh into native/build/addon/) and types what it exports.
 * Override the path with LONGTAIL_ENGINE_ADDON.
 */
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

/** One event as the addon hands it over (batched: `onEvents` receives arrays of these). */
export interface NativeEvent {
  readonly request: number;
  /** -1: the event carries no token. */
  readonly token: number;
  readonly logprob?: number;
  readonly top?: readonly { readonly token: number; readonly logprob: number }[];
  /** '' while the request goes on; else how it ended (the request's last event). */
  readonly finish: '' | 'stop' | 'length' | 'cancelled' | 'error';
  readonly error?: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
}

export type NativeEventsCallback = (events: NativeEvent[]) => void;

export interface NativeRequest {
  readonly prompt: Int32Array | readonly number[];
  readonly adapter: number;
  readonly sampling: Record<string, unknown>;
}

export interface NativeRuntime {
  registerAdapter(name: string, dir: string): number;
  registerAdapterAsync(name: string, dir: string): Promise<number>;
  unregisterAdapter(id: number): void;
  submit(request: NativeRequest): number;
  cancel(id: number): void;
  stats(): Record<string, unknown>;
  /** Resolves with the number of requests the runtime left without a final event (0 unless it has a bug). */
  close(): Promise<number>;
  readonly closed: boolean;
}

export interface NativeAddon {
  readonly Runtime: new (modelDir: string, options: object, onEvents: NativeEventsCallback) => NativeRuntime;
  openRuntime(modelDir: string, options: object, onEvents: NativeEventsCallback): Promise<NativeRuntime>;
  readonly napiVersion: number;
}

export const ADDON_PATH =
  process.env['LONGTAIL_ENGINE_ADDON'] ??
  fileURLToPath(new URL('../../../native/build/addon/longtail_engine.node', import.meta.url));

let addon: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (addon !== undefined) return addon;
  if (!existsSync(ADDON_PATH)) {
    throw new Error(
      `the engine addon is not built (${ADDON_PATH} does not exist): run \`npm run build:native\` ` +
        '(or `sh native/scripts/build-addon.sh`)',
    );
  }
  // RTLD_NOW: a symbol the addon lacks (an engine function not linked in) fails here, at load,
  // with the name of the symbol, instead of killing the process at its first call.
  const module = { exports: {} as NativeAddon };
  process.dlopen(module, ADDON_PATH, constants.dlopen.RTLD_NOW);
  addon = module.exports;
  return addon;
}
