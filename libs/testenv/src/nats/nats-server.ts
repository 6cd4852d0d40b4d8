/**
 * The NATS server contract shared by the local-process and container implementations.
 */

export interface StartNatsServerOptions {
  /** Client port. Default: a free port. */
  readonly port?: number;
  /** JetStream store directory (local runtime). Default: a temporary directory, removed by `stop()`. A given one is kept. */
  readonly storeDir?: string;
  /** Start-up deadline. Default 30 s. */
  readonly startTimeoutMs?: number;
}

export interface NatsServer {
  /** Client URL, `nats://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Monitoring (HTTP) port: `/healthz`, `/jsz`, `/varz`. */
  readonly monitorPort: number;
  /** JetStream store directory (inside the container for the containers runtime). */
  readonly storeDir: string;
  readonly runtime: 'local' | 'containers';
  /** Stops the server for good and removes a temporary store. Idempotent. */
  stop(): Promise<void>;
  /**
   * Stops the server (gracefully: JetStream flushes), waits `downtimeMs` (default 0), starts it
   * again on the same port with the same store, and resolves once JetStream is ready.
   */
  restart(options?: { downtimeMs?: number }): Promise<void>;
}
