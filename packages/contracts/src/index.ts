export * from './errors.js';
export * from './ids.js';
export * from './job.js';
export * from './logs.js';
export * from './workers.js';
export * from './events.js';
export * from './metrics.js';
export * from './artifacts.js';
