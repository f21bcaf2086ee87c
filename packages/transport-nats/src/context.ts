import type { Lifecycle, LocalNode, Logger } from '@replica/transport-api';
import type { NatsConfig } from './options.js';
import type { Names } from './subjects.js';

/** What every part of one started transport shares. */
export interface NatsContext {
  readonly node: LocalNode;
  readonly cfg: NatsConfig;
  readonly names: Names;
  readonly log: Logger;
  /** `started` is true until stop() begins. */
  readonly lifecycle: Lifecycle;
  /** Resolves once stop() began: loops that wait on the nats client race it. */
  readonly stopped: Promise<'stopped'>;
  /** Hands over a loop that stop() waits for (it must end once `stopped` resolved). */
  track(loop: Promise<void>): void;
}
