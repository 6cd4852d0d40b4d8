/** Values the global setup hands to test files through vitest's `provide`/`inject`. */
export {};

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the run's shared PostgreSQL server (maintenance database `postgres`). */
    pgAdminUrl: string;
  }
}
