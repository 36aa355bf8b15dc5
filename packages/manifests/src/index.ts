export * from './load.js';
export * from './params.js';
export * from './render.js';
export * from './schema.js';
export * from './template.js';
