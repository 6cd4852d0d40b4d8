/**
 * The scheduler's load (prefetch) and evict commands for this worker, on
 * `workerAdaptersSubject(WORKER_ID)`. Fenced: the worker remembers the highest scheduler term it
 * has seen and refuses a command stamped with a lower one (`STALE_TERM`), so a scheduler that lost
 * its lease cannot undo what its successor decided. An evict is refused (`IN_USE`) while a request
 * runs on the adapter; the scheduler keeps it placed and tries again later.
 */
import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { z } from 'zod';
import {
  WorkerAdapterCommandSchema,
  workerAdaptersSubject,
  type WorkerAdapterReply,
} from '@longtail/contracts';
import { MESSAGING_CONNECTION, serveCommand, type CommandServer, type MessagingConnection } from '@longtail/messaging';
import type { Logger } from '@longtail/telemetry';
import type { WorkerConfig } from '../config.js';
import { InferenceServer } from '../inference/inference.server.js';
import { WORKER_CONFIG, WORKER_LOGGER } from './tokens.js';

@Injectable()
export class AdapterCommands implements OnApplicationBootstrap, BeforeApplicationShutdown {
  #server: CommandServer | undefined;
  /** Highest scheduler term seen (0: none yet). */
  #term = 0;

  constructor(
    @Inject(MESSAGING_CONNECTION) private readonly conn: MessagingConnection,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(WORKER_LOGGER) private readonly logger: Logger,
    private readonly inference: InferenceServer,
  ) {}

  onApplicationBootstrap(): void {
    this.#server = serveCommand(this.conn, workerAdaptersSubject(this.config.WORKER_ID), (p) => this.handle(p), {
      logger: this.logger,
    });
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.#server?.stop();
  }

  get term(): number {
    return this.#term;
  }

  async handle(payload: unknown): Promise<WorkerAdapterReply> {
    const parsed = WorkerAdapterCommandSchema.safeParse(payload);
    if (!parsed.success) return { ok: false, code: 'INVALID', message: z.prettifyError(parsed.error) };
    const command = parsed.data;
    if (command.term < this.#term)
      return {
        ok: false,
        code: 'STALE_TERM',
        message: `term ${command.term} is older than term ${this.#term} already seen`,
      };
    this.#term = command.term;
    if (command.op === 'evict') {
      if (await this.inference.evictAdapter(command.adapterId)) return { ok: true };
      return { ok: false, code: 'IN_USE', message: `${command.adapterId} has requests running` };
    }
    try {
      await this.inference.loadAdapter(command.adapterId, command.adapterSha256);
      return { ok: true };
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, adapterId: command.adapterId }, 'adapter load failed');
      return { ok: false, code: 'FETCH_FAILED', message: (err as Error).message };
    }
  }
}
