export { buildApp, type AppDeps } from './app.js';
export { loadConfig, type Config, type TransportConfig, type TransportKind } from './config.js';
export { allErrorCodes, appErrorClasses, httpStatusOf } from './errors.js';
export { transportFromConfig } from './transport.js';
