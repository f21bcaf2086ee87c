import { warnLogger } from '@replica/transport-api';
import { resolveConfig, type PlexusComponents, type PlexusInit } from './options.js';
import { Plexus, type PlexusTransport } from './plexus.js';

export type { PlexusComponents, PlexusInit, PlexusPeer } from './options.js';
export { CERTIFICATE_WARNING_MS, type PlexusTransport } from './plexus.js';
export { Frame, FrameDecoder, encodeFrame, type FrameType } from './frames.js';

/**
 * Creates a plexus transport: direct replication over a full mesh of mutually
 * authenticated TLS 1.3 connections (see {@link PlexusTransport}).
 */
export function plexusTransport(init: PlexusInit, components: PlexusComponents = {}): PlexusTransport {
  return new Plexus(resolveConfig(init), components.logger ?? warnLogger);
}
