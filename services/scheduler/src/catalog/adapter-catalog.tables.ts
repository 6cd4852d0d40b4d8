import type { Generated } from 'kysely';

/** What the scheduler knows of each adapter: enough to place it (base model, size, rank). */
export interface AdapterCatalogTable {
  adapter_id: string;
  base_model: string;
  rank: number;
  size_bytes: bigint;
  weights_sha256: string;
  weights_object_key: string;
  /** Time of registration, from the event (never the consumer's clock). */
  registered_at: Date;
  /** Time of retirement, from the event; null while the adapter may be served. */
  retired_at: Date | null;
  updated_seq: Generated<bigint>;
}

export interface SchedulerTables {
  adapter_catalog: AdapterCatalogTable;
}
