/**
 * `MessagingModule.forRoot(...)` once in the root module of a service: connects (waiting for the
 * server, reconnecting forever), provisions what the service declares, and provides
 * `EventPublisher`, `CommandClient`, `MessagingService` and the raw connection
 * (`MESSAGING_CONNECTION`) to every module (global).
 */
import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { eventCodec, type EventCodec } from '../codec.js';
import { createCommandClient, CommandClient } from '../commands.js';
import { connectMessaging, type MessagingConnection } from '../connection.js';
import { provision } from '../provision.js';
import { createEventPublisher, EventPublisher } from '../publisher.js';
import { MessagingService } from './messaging.service.js';
import {
  EVENT_CODEC,
  MESSAGING_CONNECTION,
  MESSAGING_OPTIONS,
  type MessagingModuleAsyncOptions,
  type MessagingModuleOptions,
} from './options.js';

const sharedProviders: Provider[] = [
  {
    provide: MESSAGING_CONNECTION,
    inject: [MESSAGING_OPTIONS],
    useFactory: async (options: MessagingModuleOptions): Promise<MessagingConnection> => {
      const conn = await connectMessaging({
        ...options.connection,
        servers: options.servers,
        name: options.name,
      });
      try {
        if (options.provision) await provision(conn, options.provision);
      } catch (err) {
        await conn.close();
        throw err;
      }
      return conn;
    },
  },
  {
    provide: EVENT_CODEC,
    inject: [MESSAGING_OPTIONS],
    useFactory: (options: MessagingModuleOptions): EventCodec =>
      eventCodec({
        ...(options.parse ? { parse: options.parse } : {}),
        ...(options.encode ? { encode: options.encode } : {}),
        ...(options.subjectFor ? { subjectFor: options.subjectFor } : {}),
        ...(options.deadLetterSubject ? { deadLetterSubject: options.deadLetterSubject } : {}),
      }),
  },
  {
    provide: EventPublisher,
    inject: [MESSAGING_CONNECTION, EVENT_CODEC],
    useFactory: (conn: MessagingConnection, codec: EventCodec) => createEventPublisher(conn, codec),
  },
  {
    provide: CommandClient,
    inject: [MESSAGING_CONNECTION],
    useFactory: (conn: MessagingConnection) => createCommandClient(conn),
  },
  MessagingService,
];

const exported = [MESSAGING_CONNECTION, EventPublisher, CommandClient, MessagingService];

@Module({})
export class MessagingModule {
  static forRoot(options: MessagingModuleOptions): DynamicModule {
    return {
      module: MessagingModule,
      global: true,
      imports: [DiscoveryModule],
      providers: [{ provide: MESSAGING_OPTIONS, useValue: options }, ...sharedProviders],
      exports: exported,
    };
  }

  static forRootAsync(options: MessagingModuleAsyncOptions): DynamicModule {
    return {
      module: MessagingModule,
      global: true,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: [
        {
          provide: MESSAGING_OPTIONS,
          inject: [...(options.inject ?? [])],
          useFactory: options.useFactory as (...args: unknown[]) => MessagingModuleOptions,
        },
        ...sharedProviders,
      ],
      exports: exported,
    };
  }
}
