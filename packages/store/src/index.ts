export { JobStore, type JobPage, type ListOptions, type Transition } from './job-store.js';
export { jobQueue, keys, type Keys } from './keys.js';
export { LogStream, type NewLine } from './log-stream.js';
export { connectRedis, redisCall, type ConnectOptions, type Redis } from './redis.js';
