/** The alarm engine's public surface: what the composition root, the API and tests import. */
export { AlarmEngine, GATEWAY_DEVICE, type AlarmEngineOptions, type ExternalCondition } from './engine.js';
export {
  DEFAULT_RULES, ProfileError, defaultProfile, loadProfile, parseProfile, resolveRules,
  type AlarmProfile, type Rule, type TechnicalConfig,
} from './rules.js';
export { FileAlarmStore, MemoryAlarmStore, type AlarmStore, type PersistedAlarms } from './store.js';
export { SENSOR_FAULT_PREFIX } from './sensorFaults.js';
export { TECHNICAL_RULES } from './technical.js';
export type * from './types.js';
