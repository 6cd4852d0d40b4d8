/** Injection token of the gateway's logger. */
export const GATEWAY_LOGGER = Symbol('GATEWAY_LOGGER');
