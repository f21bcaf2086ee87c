export { plexusTransport, type PlexusTransport } from './transport.js';
export type { PlexusComponents, PlexusInit, PlexusPeer } from './options.js';
export { Frame, FrameDecoder, encodeFrame, type FrameType } from './frames.js';
