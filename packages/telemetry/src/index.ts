export * from './metrics.js';
export * from './nvidia-smi.js';
