export { createMemorySnapshotStore, type MemorySnapshotStore } from './memory-store.js';
