export { LAG_BUCKETS_MS, Store, type Durability, type LagHistogram, type StoreOptions, type TableStats, type WriteResult } from './store.js';
export { HybridClock } from './clock.js';
