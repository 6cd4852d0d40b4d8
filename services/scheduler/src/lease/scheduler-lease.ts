/**
 * One active scheduler: a lease in the `leases` KV bucket (key `SCHEDULER_LEASE_KEY`), taken by
 * creating the key or by compare-and-set over an expired holder's revision, and renewed by
 * compare-and-set on the holder's own last revision. The KV revision of the write that made a
 * scheduler active is its `term`, the fencing token it stamps on every placement entry and worker
 * command. A holder whose renewal CAS fails (someone took over) or that could not renew before its
 * own expiry steps down at once; a standby takes over within about `ttlMs + renewMs` of the
 * active one dying, or at once when it stops cleanly (the key is deleted on release).
 *
 * Expiry is read on the holder's clock (`expiresAtMs`), so schedulers need clocks within a small
 * fraction of `ttlMs` of each other (NTP on one site gives milliseconds).
 */
import type { KV } from '@nats-io/kv';
import { SCHEDULER_LEASE_KEY, SchedulerLeaseSchema, type SchedulerLease as LeaseValue } from '@longtail/contracts';
import type { Logger } from '@longtail/telemetry';

export interface LeaseOptions {
  /** Instance id written as the holder (unique per process). */
  readonly holder: string;
  /** How long a renewal holds the lease, ms. */
  readonly ttlMs: number;
  /** Interval between renewals (active) and takeover attempts (standby), ms; well under `ttlMs`. */
  readonly renewMs: number;
}

export type LeaseLost = 'superseded' | 'expired' | 'released';

export interface LeaseListener {
  /** This instance is active under `term` (a fresh, higher term each time). */
  active(term: number): void | Promise<void>;
  /** This instance must stop acting under `term`. */
  lost(term: number, why: LeaseLost): void | Promise<void>;
}

export class SchedulerLease {
  readonly #kv: KV;
  readonly #options: LeaseOptions;
  readonly #listener: LeaseListener;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  /** Term while active, null as a standby. */
  #term: number | null = null;
  /** Revision of this holder's last write (active only). */
  #revision = 0;
  /** Until when this holder's last successful write holds the lease (ms, local clock). */
  #expiresAtMs = 0;
  #busy: Promise<void> = Promise.resolve();

  constructor(kv: KV, options: LeaseOptions, listener: LeaseListener, logger: Logger) {
    if (!(options.renewMs > 0 && options.renewMs * 2 <= options.ttlMs))
      throw new Error(`lease: renewMs (${options.renewMs}) must be > 0 and at most ttlMs/2 (${options.ttlMs})`);
    this.#kv = kv;
    this.#options = options;
    this.#listener = listener;
    this.#logger = logger;
  }

  /** The term while this instance holds the lease and it has not run out; else null. */
  get term(): number | null {
    return this.#term !== null && Date.now() < this.#expiresAtMs ? this.#term : null;
  }

  get holder(): string {
    return this.#options.holder;
  }

  /** Starts (or resumes) taking and renewing the lease. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#run(), this.#options.renewMs);
    this.#run();
  }

  /**
   * Stops the loop without telling anyone, as a crash or a long pause would: the lease runs out
   * on its own. `start` again resumes (and finds out whether it was superseded).
   */
  halt(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops, and hands the lease over at once by deleting it (CAS on the last revision). */
  async release(): Promise<void> {
    this.halt();
    await this.#busy;
    const term = this.#term;
    if (term === null) return;
    this.#term = null;
    await this.#kv.delete(SCHEDULER_LEASE_KEY, { previousSeq: this.#revision }).catch(() => undefined);
    await this.#listener.lost(term, 'released');
  }

  #run(): void {
    this.#busy = this.#busy.then(() => (this.#term === null ? this.#acquire() : this.#renew())).catch((err: unknown) =>
      this.#logger.warn({ err: (err as Error).message }, 'lease step failed'),
    );
  }

  #value(): { value: string; expiresAtMs: number } {
    const expiresAtMs = Date.now() + this.#options.ttlMs;
    const lease: LeaseValue = { version: 1, holder: this.#options.holder, expiresAtMs };
    return { value: JSON.stringify(lease), expiresAtMs };
  }

  async #acquire(): Promise<void> {
    const entry = await this.#kv.get(SCHEDULER_LEASE_KEY);
    const { value, expiresAtMs } = this.#value();
    let revision: number;
    try {
      if (entry === null || entry.operation !== 'PUT') {
        revision = await this.#kv.create(SCHEDULER_LEASE_KEY, value);
      } else {
        const held = SchedulerLeaseSchema.safeParse(entry.json());
        // A value we cannot read is treated as expired: an operator's stray write must not stall placement.
        if (held.success && held.data.expiresAtMs > Date.now()) return;
        revision = await this.#kv.update(SCHEDULER_LEASE_KEY, value, entry.revision);
      }
    } catch {
      return; // another standby won the race (its create or CAS landed first)
    }
    this.#term = revision;
    this.#revision = revision;
    this.#expiresAtMs = expiresAtMs;
    this.#logger.info({ term: revision, holder: this.#options.holder }, 'scheduler lease taken: active');
    await this.#listener.active(revision);
  }

  async #renew(): Promise<void> {
    const term = this.#term!;
    if (Date.now() >= this.#expiresAtMs) return this.#lose(term, 'expired');
    const { value, expiresAtMs } = this.#value();
    try {
      this.#revision = await this.#kv.update(SCHEDULER_LEASE_KEY, value, this.#revision);
      this.#expiresAtMs = expiresAtMs;
    } catch (err) {
      // A CAS refusal means another holder wrote the key: superseded. Anything else (NATS away)
      // is retried until our own expiry.
      const entry = await this.#kv.get(SCHEDULER_LEASE_KEY).catch(() => undefined);
      if (entry !== undefined && (entry === null || entry.revision !== this.#revision))
        return this.#lose(term, 'superseded');
      this.#logger.warn({ err: (err as Error).message, term }, 'lease renewal failed; retrying');
    }
  }

  async #lose(term: number, why: LeaseLost): Promise<void> {
    this.#term = null;
    this.#logger.warn({ term, why, holder: this.#options.holder }, 'scheduler lease lost: standby');
    await this.#listener.lost(term, why);
  }
}
