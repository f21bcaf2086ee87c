export { Store, type Durability, type StoreOptions, type TableStats, type WriteResult } from './store.js';
export { Histogram, LAG_BUCKETS_MS, type HistogramSnapshot, type LagHistogram } from './histogram.js';
export { HybridClock } from './clock.js';
export { backupStore, type BackupResult } from './backup.js';
