/**
 * `@longtail/contracts/testing`: valid example events for other packages' tests (a messaging test
 * that needs an `inference.completed` to publish, a projection test that needs an epoch). Not part
 * of the runtime surface.
 */
export { EXAMPLE_DATA, exampleData, exampleEvent } from './examples.js';
