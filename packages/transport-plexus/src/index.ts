export { plexusTransport, type PlexusComponents, type PlexusInit, type PlexusPeer, type PlexusTransport } from './transport.js';
export { Frame, FrameDecoder, encodeFrame, type FrameType } from './frames.js';
