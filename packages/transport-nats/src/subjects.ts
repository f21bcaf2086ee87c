/** JetStream headers the outbox sets on every message. */
export const Header = { msgId: 'Nats-Msg-Id', expectedLastMsgId: 'Nats-Expected-Last-Msg-Id' } as const;

/**
 * Every subject, stream name and message id this transport puts on the broker, for one
 * node. They are the wire format: nodes of one cluster must agree on them.
 * - entries of node `n` on table `t`: subject `<subjectPrefix>.n.t`, stored in stream `<streamPrefix>_n`
 * - applied-cursor announcements: `<subjectPrefix>._applied.n`
 * - merge-resync requests served by node `n`: `<subjectPrefix>._snapshot.n`
 * - message ids: `n:<first originSeq>-<last originSeq>`
 */
export class Names {
  /** This node's stream. */
  readonly ownStream: string;
  /** The subjects this node's stream holds. */
  readonly ownSubjects: string;
  /** Every node's announcements. */
  readonly allApplied: string;
  /** This node's announcements. */
  readonly ownApplied: string;
  /** Where this node serves merge resyncs. */
  readonly ownSnapshot: string;
  readonly #entryPrefix: string;
  readonly #streamPrefix: string;
  readonly #appliedPrefix: string;

  constructor(
    readonly node: string,
    private readonly prefixes: { readonly streamPrefix: string; readonly subjectPrefix: string },
  ) {
    const { streamPrefix, subjectPrefix } = prefixes;
    this.#streamPrefix = `${streamPrefix}_`;
    this.ownStream = this.streamOf(node);
    this.#entryPrefix = `${subjectPrefix}.${node}.`;
    this.ownSubjects = `${this.#entryPrefix}>`;
    this.#appliedPrefix = `${subjectPrefix}._applied.`;
    this.allApplied = `${this.#appliedPrefix}*`;
    this.ownApplied = `${this.#appliedPrefix}${node}`;
    this.ownSnapshot = this.snapshotOf(node);
  }

  streamOf(node: string): string {
    return `${this.#streamPrefix}${node}`;
  }

  /** The node whose stream `stream` is, or undefined for a stream of something else. */
  originOf(stream: string): string | undefined {
    return stream.startsWith(this.#streamPrefix) ? stream.slice(this.#streamPrefix.length) : undefined;
  }

  /** The subject of this node's entries of `table`. */
  entries(table: string): string {
    return `${this.#entryPrefix}${table}`;
  }

  /** The node that sent an announcement on `subject`. */
  announcer(subject: string): string {
    return subject.slice(this.#appliedPrefix.length);
  }

  snapshotOf(node: string): string {
    return `${this.prefixes.subjectPrefix}._snapshot.${node}`;
  }

  /** The id of this node's message holding its entries `first`…`last` (origin sequences). */
  messageId(first: number, last: number): string {
    return `${this.node}:${first}-${last}`;
  }
}
