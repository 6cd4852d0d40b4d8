/**
 * Owns the process's messaging lifecycle in a Nest app: at bootstrap it binds every
 * `@OnEvents` / `@OnCommand` method to its consumer or subscription; at shutdown it stops taking
 * work, lets what is in hand finish and be acked, and only then closes the connection.
 *
 * Shutdown order (Nest calls these in this order on `app.close()` or a signal):
 *   onModuleDestroy            stop pulling and answering; wait for in-flight handlers to ack
 *   beforeApplicationShutdown  drain the connection (flush publishes, close)
 * MessagingModule is global, and Nest destroys global modules last, so other modules'
 * `onModuleDestroy` hooks run before in-flight handlers have finished. Resources handlers use
 * (database pools) must therefore close in `onApplicationShutdown`, or the owner must await
 * `MessagingService.stopConsuming()` first.
 */
import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { EventCodec } from '../codec.js';
import type { MessagingConnection } from '../connection.js';
import { serveCommand, type CommandHandler, type CommandServer, type OnCommandOptions } from '../commands.js';
import { startEventConsumer, type EventConsumer } from '../consumer/event-consumer.js';
import {
  resolveConsumerOptions,
  type BatchEventHandler,
  type EventHandler,
  type OnEventsOptions,
} from '../consumer/options.js';
import {
  ON_COMMAND_METADATA,
  ON_EVENTS_METADATA,
  ON_STREAM_METADATA,
  type CommandBinding,
} from './decorators.js';
import { serveStream, type StreamHandler, type StreamServer } from '../streaming.js';
import {
  EVENT_CODEC,
  MESSAGING_CONNECTION,
  MESSAGING_OPTIONS,
  type MessagingModuleOptions,
} from './options.js';

@Injectable()
export class MessagingService implements OnApplicationBootstrap, OnModuleDestroy, BeforeApplicationShutdown {
  readonly #conn: MessagingConnection;
  readonly #options: MessagingModuleOptions;
  readonly #codec: EventCodec;
  readonly #discovery: DiscoveryService;
  readonly #scanner: MetadataScanner;
  readonly #consumers: EventConsumer[] = [];
  readonly #commands: Array<CommandServer | StreamServer> = [];
  #stopped: Promise<void> | undefined;
  #drained: Promise<void> | undefined;

  constructor(
    @Inject(MESSAGING_CONNECTION) conn: MessagingConnection,
    @Inject(MESSAGING_OPTIONS) options: MessagingModuleOptions,
    @Inject(EVENT_CODEC) codec: EventCodec,
    @Inject(DiscoveryService) discovery: DiscoveryService,
    @Inject(MetadataScanner) scanner: MetadataScanner,
  ) {
    this.#conn = conn;
    this.#options = options;
    this.#codec = codec;
    this.#discovery = discovery;
    this.#scanner = scanner;
  }

  /** The underlying connection (raw `nc` / `js` for KV, object store and the like). */
  get connection(): MessagingConnection {
    return this.#conn;
  }

  /** Readiness: connected to a NATS server right now. */
  isConnected(): boolean {
    return this.#conn.isConnected();
  }

  /** The last error reported by the client or a consumer. */
  get lastError(): Error | undefined {
    return this.#conn.lastError;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.#options.consume === false) return;
    try {
      await this.#bindDecoratedHandlers();
    } catch (err) {
      // A half-started service must not keep consuming: stop what did start, then fail boot.
      await this.stopConsuming();
      throw err;
    }
  }

  async #bindDecoratedHandlers(): Promise<void> {
    const durables = new Set<string>();
    const wrappers = [...this.#discovery.getProviders(), ...this.#discovery.getControllers()];
    for (const wrapper of wrappers) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object' || !wrapper.isDependencyTreeStatic()) continue;
      const proto = Object.getPrototypeOf(instance) as Record<string, unknown> | null;
      for (const name of this.#scanner.getAllMethodNames(proto)) {
        const method = proto?.[name];
        if (typeof method !== 'function') continue;
        const onEvents = Reflect.getMetadata(ON_EVENTS_METADATA, method) as OnEventsOptions | undefined;
        if (onEvents) {
          const key = `${onEvents.stream}/${onEvents.durable}`;
          if (durables.has(key)) throw new Error(`two @OnEvents handlers share durable ${key}`);
          durables.add(key);
          const bound = (method as (...args: unknown[]) => unknown).bind(instance);
          await this.consume(onEvents, bound as EventHandler & BatchEventHandler);
        }
        const onCommand = Reflect.getMetadata(ON_COMMAND_METADATA, method) as CommandBinding | undefined;
        if (onCommand) {
          this.serve(onCommand.subject, (method as CommandHandler).bind(instance), onCommand);
        }
        const onStream = Reflect.getMetadata(ON_STREAM_METADATA, method) as CommandBinding | undefined;
        if (onStream) {
          this.serveStream(onStream.subject, (method as StreamHandler).bind(instance), onStream);
        }
      }
    }
  }

  /** Binds a handler to a durable consumer without the decorator (e.g. built at run time). */
  async consume(options: OnEventsOptions, handler: EventHandler | BatchEventHandler): Promise<void> {
    if (this.#stopped) throw new Error('messaging is shutting down');
    const resolved = resolveConsumerOptions(options);
    const consumer = await startEventConsumer(
      { conn: this.#conn, codec: this.#codec, logger: this.#options.logger },
      resolved,
      resolved.batch
        ? { kind: 'batch', handle: handler as BatchEventHandler }
        : { kind: 'single', handle: handler as EventHandler },
    );
    this.#consumers.push(consumer);
  }

  /** Answers requests on a subject without the decorator. */
  serve(subject: string, handler: CommandHandler, options: OnCommandOptions = {}): void {
    if (this.#stopped) throw new Error('messaging is shutting down');
    this.#commands.push(
      serveCommand(this.#conn, subject, handler, { ...options, logger: this.#options.logger }),
    );
  }

  /** Answers streamed requests on a subject without the decorator. */
  serveStream(subject: string, handler: StreamHandler, options: OnCommandOptions = {}): void {
    if (this.#stopped) throw new Error('messaging is shutting down');
    this.#commands.push(
      serveStream(this.#conn, subject, handler, { ...options, logger: this.#options.logger }),
    );
  }

  /** Stops pulling and answering; resolves when every in-flight handler has finished. */
  stopConsuming(): Promise<void> {
    this.#stopped ??= (async () => {
      await Promise.allSettled([
        ...this.#consumers.map((c) => c.stop()),
        ...this.#commands.map((c) => c.stop()),
      ]);
    })();
    return this.#stopped;
  }

  /** Graceful stop: `stopConsuming()`, then flush and close the connection. Idempotent. */
  drain(): Promise<void> {
    this.#drained ??= (async () => {
      await this.stopConsuming();
      await this.#conn.drain();
    })();
    return this.#drained;
  }

  async onModuleDestroy(): Promise<void> {
    await this.stopConsuming();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.drain();
  }
}
