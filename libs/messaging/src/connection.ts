/**
 * One NATS connection per process, made to outlive the server: it reconnects forever (a NATS
 * restart or fail-over is an outage of seconds, not a crash), waits for the server on first
 * connect, and tracks whether it is connected and what went wrong last, for readiness probes.
 */
import { connect, type NatsConnection, type ConnectionOptions } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';

export interface MessagingConnectOptions {
  /** `nats://host:4222` or a list (cluster seeds). */
  readonly servers: string | readonly string[];
  /** Connection name shown by the server (`nats server report connections`): the service name. */
  readonly name: string;
  /** Wait between reconnect attempts (ms). Default 1000; jittered by the client. */
  readonly reconnectTimeWaitMs?: number;
  /** Retry the first connect until the server is there (default true). */
  readonly waitOnFirstConnect?: boolean;
  /** JetStream API / publish-ack timeout (ms). Default 5000. */
  readonly apiTimeoutMs?: number;
  /** Anything else nats.js accepts (credentials, TLS, ping interval...). */
  readonly nats?: Partial<ConnectionOptions>;
}

export type ConnectionStatusKind = 'connected' | 'disconnected' | 'reconnecting' | 'error' | 'closed';

export interface ConnectionStatus {
  readonly kind: ConnectionStatusKind;
  readonly connected: boolean;
  readonly server?: string;
  readonly error?: Error;
}

export interface MessagingConnection {
  readonly name: string;
  /** The raw nats.js connection, for KV / object store / core subjects. */
  readonly nc: NatsConnection;
  /** JetStream client bound to `nc`. */
  readonly js: JetStreamClient;
  /** JetStream management API (created once, on first use). */
  jsm(): Promise<JetStreamManager>;
  /** True between a (re)connect and the next disconnect. */
  isConnected(): boolean;
  /** The last asynchronous error reported by the client or a consumer, if any. */
  readonly lastError: Error | undefined;
  /** Records an error for readiness reporting (used by consumers). */
  reportError(err: Error): void;
  /** Status changes as they happen; returns an unsubscribe function. */
  onStatus(listener: (status: ConnectionStatus) => void): () => void;
  /** Flushes pending publishes, drains subscriptions, closes. Idempotent. */
  drain(): Promise<void>;
  /** Closes at once (pending work is dropped). Idempotent. */
  close(): Promise<void>;
}

export async function connectMessaging(options: MessagingConnectOptions): Promise<MessagingConnection> {
  // `NATS_URL=nats://a:4222,nats://b:4222` works as well as a list.
  const servers = (typeof options.servers === 'string' ? [options.servers] : [...options.servers])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const nc = await connect({
    pingInterval: 10_000,
    maxPingOut: 3,
    ...options.nats,
    servers,
    name: options.name,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: options.reconnectTimeWaitMs ?? 1000,
    waitOnFirstConnect: options.waitOnFirstConnect ?? true,
  });
  return new MessagingConnectionImpl(options.name, nc, options.apiTimeoutMs ?? 5000);
}

class MessagingConnectionImpl implements MessagingConnection {
  readonly js: JetStreamClient;
  #connected = true;
  #lastError: Error | undefined;
  #jsm: Promise<JetStreamManager> | undefined;
  #closing: Promise<void> | undefined;
  readonly #listeners = new Set<(status: ConnectionStatus) => void>();
  readonly #timeoutMs: number;

  constructor(
    readonly name: string,
    readonly nc: NatsConnection,
    timeoutMs: number,
  ) {
    this.#timeoutMs = timeoutMs;
    this.js = jetstream(nc, { timeout: timeoutMs });
    void this.#watch();
    void nc.closed().then((err) => {
      this.#connected = false;
      if (err instanceof Error) this.#lastError = err;
      this.#emit({ kind: 'closed', connected: false, ...(err instanceof Error ? { error: err } : {}) });
    });
  }

  get lastError(): Error | undefined {
    return this.#lastError;
  }

  isConnected(): boolean {
    return this.#connected && !this.nc.isClosed();
  }

  reportError(err: Error): void {
    this.#lastError = err;
  }

  jsm(): Promise<JetStreamManager> {
    this.#jsm ??= jetstreamManager(this.nc, { timeout: this.#timeoutMs }).catch((err: unknown) => {
      this.#jsm = undefined;
      throw err;
    });
    return this.#jsm;
  }

  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  drain(): Promise<void> {
    this.#closing ??= this.nc.isClosed() ? Promise.resolve() : this.nc.drain().catch(() => this.nc.close());
    return this.#closing;
  }

  close(): Promise<void> {
    this.#closing ??= this.nc.close();
    return this.#closing;
  }

  async #watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.#connected = false;
          this.#emit({ kind: 'disconnected', connected: false, server: s.server });
          break;
        case 'reconnecting':
          this.#connected = false;
          this.#emit({ kind: 'reconnecting', connected: false });
          break;
        case 'reconnect':
          this.#connected = true;
          this.#emit({ kind: 'connected', connected: true, server: s.server });
          break;
        case 'error':
          this.#lastError = s.error;
          this.#emit({ kind: 'error', connected: this.#connected, error: s.error });
          break;
        default:
          break;
      }
    }
  }

  #emit(status: ConnectionStatus): void {
    for (const listener of this.#listeners) {
      try {
        listener(status);
      } catch {
        // a listener's failure is its own; status delivery goes on
      }
    }
  }
}
