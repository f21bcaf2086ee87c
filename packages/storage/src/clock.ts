import type { Version } from '@replica/transport-api';

/**
 * A hybrid logical clock. `now()` issues versions that are strictly increasing on
 * this node and greater than every version it has `observe()`d, whatever the wall
 * clock does, so a write always supersedes what its node has seen.
 */
export class HybridClock {
  #wall: number;
  #counter: number;

  constructor(
    readonly node: string,
    private readonly wallClock: () => number,
    start: readonly [number, number] = [0, 0],
  ) {
    this.#wall = start[0];
    this.#counter = start[1];
  }

  now(): Version {
    const wall = this.wallClock();
    if (wall > this.#wall) {
      this.#wall = wall;
      this.#counter = 0;
    } else {
      this.#counter++;
    }
    return [this.#wall, this.#counter, this.node];
  }

  /** Advances past a version received from another node. */
  observe(v: Version): void {
    if (v[0] > this.#wall || (v[0] === this.#wall && v[1] > this.#counter)) {
      this.#wall = v[0];
      this.#counter = v[1];
    }
  }

  state(): [number, number] {
    return [this.#wall, this.#counter];
  }
}
