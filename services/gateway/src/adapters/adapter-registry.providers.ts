/** The registry's providers, for GatewayModule: settings, object store, catalog, guard, multipart. */
import type { Provider } from '@nestjs/common';
import { MESSAGING_CONNECTION, type MessagingConnection } from '@longtail/messaging';
import { AdapterCatalog } from './adapter-catalog.js';
import { AdapterObjectStore } from './adapter-store.js';
import {
  ADAPTER_SETTINGS,
  AdapterWriteGuard,
  MultipartSupport,
  type AdapterSettings,
} from './adapters.controller.js';

export function adapterRegistryProviders(settings: AdapterSettings): Provider[] {
  return [
    { provide: ADAPTER_SETTINGS, useValue: settings },
    {
      provide: AdapterObjectStore,
      inject: [MESSAGING_CONNECTION],
      useFactory: (conn: MessagingConnection) => new AdapterObjectStore(conn),
    },
    AdapterCatalog,
    AdapterWriteGuard,
    MultipartSupport,
  ];
}
