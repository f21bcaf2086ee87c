export { Store, type Durability, type StoreOptions, type TableStats, type WriteResult } from './store.js';
export { StorageState, type StorageStatus, type WriteKind } from './storage-gate.js';
export { DEFAULT_MIN_FREE, minFreeBytes, statFs, type MinFree, type SpaceSample, type StatFs } from './space.js';
export { isLmdbCommitFailure } from './lmdb-errors.js';
export { Histogram, LAG_BUCKETS_MS, type HistogramSnapshot, type LagHistogram } from './histogram.js';
export { HybridClock } from './clock.js';
export { backupStore, type BackupResult } from './backup.js';
