export { canonicalJson } from './canonical.js';
export * from './orset.js';
export * from './counter.js';
export * from './resolvers.js';
