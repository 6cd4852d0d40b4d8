/** Injection tokens of the attribution app. */
export const ATTRIBUTION_DB = Symbol('attribution:db');
export const ATTRIBUTION_OPTIONS = Symbol('attribution:options');
