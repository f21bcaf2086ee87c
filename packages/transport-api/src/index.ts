export * from './types.js';
export * from './errors.js';
export * from './names.js';
export { CODEC_VERSION, decodeBatch, decodeSnapshot, encodeBatch, encodeSnapshot } from './codec.js';
export { ConfirmationWaiters } from './waiters.js';
