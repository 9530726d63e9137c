export * from './vclock.js';
export * from './version.js';
export * from './resolve.js';
export * from './context.js';
