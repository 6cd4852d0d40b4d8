/** Nest injection tokens of the ledger service. */
export const LEDGER_OPTIONS = Symbol('ledger:options');
/** The resolved chain: `ResolvedChain` (external settings, or the embedded anvil once started). */
export const LEDGER_CHAIN = Symbol('ledger:chain');
