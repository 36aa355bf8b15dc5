export * from './nvidia-smi.js';
