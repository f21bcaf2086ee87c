export { Store, type Durability, type StoreOptions, type TableStats, type WriteResult } from './store.js';
export { HybridClock } from './clock.js';
