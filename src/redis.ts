export {
  createRedisSnapshotStore,
  type RedisClient,
  type RedisSnapshotStore,
  type RedisStoreOptions,
  type RedisSubscriber,
} from './redis-store.js';
