import type { Logger } from '../../log/logger';
import type { LmdbBodyFiles } from './body-files';
import { formatSlotRef, parseSlotRef, type SlotRef } from './body-slabs';
import { CHANGE_POLL_MS } from './changes';
import type { LmdbEnv } from './env';

/**
 * The LMDB side of body slots (body-slabs.ts holds the files): which message maps to which slot (`slots`), which
 * slots other processes released (`freedSlots`), and the rules that keep a slot's bytes from outliving its body:
 * a slot is zeroed inside the transaction that unmaps it, after checking there that its message no longer needs
 * it, and the relay hands it out again only after that commit.
 */
export class LmdbSlotMap {
  private lastDrain = 0;

  constructor(
    private readonly env: LmdbEnv,
    private readonly files: LmdbBodyFiles,
    private readonly logger: Logger,
    /** Whether a message still needs its body, as last committed (read inside the releasing transaction). */
    private readonly bodyNeeded: (id: string) => boolean,
  ) {}

  /** The slot a message's body is in, as stored (undefined: the body is a file of its own, or chunks). */
  slotOf(id: string): string | undefined {
    return this.env.slots.get(id);
  }

  /** Inside the transaction that writes a message's record: its body's slot (written and flushed before). */
  mapInTxn(id: string, ref: SlotRef): void {
    this.env.slots.putSync(id, formatSlotRef(ref));
  }

  /** Message ids that map to a slot. */
  ids(): string[] {
    return [...this.env.slots.getKeys()];
  }

  /**
   * The relay, at open: takes the slot map and the freed list in one transaction (slots other processes unmap later
   * reach freedSlots after it), then opens the slabs for writing: every unmapped slot is free, and zeroed if it is
   * not zero yet.
   */
  async startAllocating(): Promise<void> {
    const { env } = this;
    const mapped = await env.write(() => {
      for (const key of [...env.freedSlots.getKeys()]) env.freedSlots.removeSync(key);
      const refs: SlotRef[] = [];
      for (const { value } of env.slots.getRange()) {
        const ref = parseSlotRef(value);
        if (ref) refs.push(ref);
      }
      return refs;
    });
    const zeroed = await this.files.slabs.startAllocating(mapped);
    if (zeroed > 0) this.logger.warn({ event: 'debris-removed', count: zeroed }, 'body slots without a record zeroed (a write or a removal cut short)');
    this.lastDrain = Date.now();
  }

  /**
   * The slots of messages that no longer need their body (checked again in the transaction), overwritten with zeros
   * and unmapped in one write transaction. The relay takes them back after the commit; any other process leaves them
   * in freedSlots for the relay. Returns the ids released.
   */
  async release(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const { env } = this;
    const slabs = this.files.slabs;
    const released = await env.write(() => {
      const out: Array<{ id: string; ref?: SlotRef }> = [];
      for (const id of ids) {
        const text = env.slots.get(id);
        if (text === undefined || this.bodyNeeded(id)) continue;
        const ref = parseSlotRef(text);
        // Zeroed before the unmapping commits: once a slot is unmapped, its old bytes are gone.
        if (ref) slabs.zero(ref);
        env.slots.removeSync(id);
        if (ref && !slabs.allocates) env.freedSlots.putSync(formatSlotRef(ref), '');
        out.push({ id, ...(ref ? { ref } : {}) });
      }
      return out;
    });
    slabs.release(released.flatMap(({ ref }) => (ref ? [ref] : [])));
    return released.map(({ id }) => id);
  }

  /**
   * After the commit that set a message aside: a body in a slot copied into kept/ (as long as the record set aside
   * says, `size`), then its slot released. False when the body is not in a slot.
   */
  async keep(at: number, id: string, size: number | undefined): Promise<boolean> {
    const ref = parseSlotRef(this.slotOf(id));
    if (!ref) return false;
    // The whole slot when the record does not say (its tail past the body is zeros).
    const bytes = this.files.slabs.read(ref, size !== undefined && size <= ref.size ? size : ref.size);
    await this.files.writeKept(at, id, bytes ?? Buffer.alloc(0));
    await this.release([id]);
    return true;
  }

  /** The relay, at most about once a second: slots other processes released become free again. */
  async drainFreed(): Promise<void> {
    if (!this.files.slabs.allocates || Date.now() - this.lastDrain < CHANGE_POLL_MS) return;
    this.lastDrain = Date.now();
    const { env } = this;
    if (env.freedSlots.getKeysCount() === 0) return;
    const freed = await env.write(() => {
      const keys = [...env.freedSlots.getKeys()];
      for (const key of keys) env.freedSlots.removeSync(key);
      return keys;
    });
    this.files.slabs.release(freed.flatMap((key) => parseSlotRef(key) ?? []));
  }
}
