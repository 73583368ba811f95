import { closeSync, constants, fdatasync, fstatSync, ftruncateSync, openSync, promises as fs, readSync, writeSync } from 'node:fs';
import path from 'node:path';
import { DirSync, fsyncDir } from '../file/durable';

/**
 * Small bodies live in slots of a few preallocated slab files, one per slot size:
 *   lmdb-bodies/slabs/<slot size>   slot i at byte i × slot size; a free slot is all zeros
 * Why: a file per body costs a create, an allocation and a journal commit (its flush and its folder's fsync) per
 * message, about 1.2 CPU-ms in the relay (docs/performance.md). A slot is overwritten in place: the slab is open,
 * its blocks exist, so the body's write goes to the page cache and one fdatasync shared by every body written in
 * the same turn of the event loop makes them durable without a journal commit.
 * A removed body is overwritten with zeros in place (ext4 writes in place), so its bytes leave the spool at once, as
 * an unlinked file's do.
 *
 * Rules that keep readers and writers apart (the LMDB side is in spool.ts):
 * - Only the allocator (the relay holding the spool lock) puts bodies into slots and frees slots.
 * - A slot is zeroed, by any process, inside the write transaction that removes its mapping, after checking there
 *   that its message no longer needs it; the allocator reuses a slot only after that commit.
 * - Reads are not locked: a reader whose bytes do not match the record looks again (queue.ts) before it calls the
 *   body damaged, because the slot may have been released and reused since it read the record.
 */
export const SLOT_SIZES = [8 * 1024, 16 * 1024, 32 * 1024, 64 * 1024, 128 * 1024, 256 * 1024] as const;

/** A slab grows by this many bytes of zeros at a time (at least one slot). */
const GROW_BYTES = 4 * 1024 * 1024;

/** Zeros to overwrite a slot with (the largest slot). */
const ZEROS = Buffer.alloc(SLOT_SIZES[SLOT_SIZES.length - 1]!);

/** Where a body is: which slab (by its slot size) and which slot. */
export interface SlotRef {
  size: number;
  index: number;
}

export function formatSlotRef(ref: SlotRef): string {
  return `${ref.size}:${ref.index}`;
}

/** A stored slot reference, or undefined for anything that is not one. */
export function parseSlotRef(text: string | undefined): SlotRef | undefined {
  const match = text === undefined ? null : /^(\d+):(\d+)$/.exec(text);
  if (!match) return undefined;
  const ref = { size: Number(match[1]), index: Number(match[2]) };
  return (SLOT_SIZES as readonly number[]).includes(ref.size) && Number.isSafeInteger(ref.index) ? ref : undefined;
}

/** The smallest slot that holds `bytes`, or undefined when the body is too big for any (it gets a file of its own). */
export function slotSizeFor(bytes: number): number | undefined {
  return SLOT_SIZES.find((size) => bytes <= size);
}

/** The allocator's view of one slab: its open file, how many slots it has, which are free (lowest last). */
interface Slab {
  fd: number;
  capacity: number;
  free: number[];
  /** Resolves once the slab file's name is durable (it was created by this process). */
  named: Promise<void>;
}

export class BodySlabs {
  /** Slabs this process writes into (the allocator only). */
  private readonly slabs = new Map<number, Slab>();
  /** Open slab files for reading and zeroing, any process. */
  private readonly fds = new Map<number, number>();
  /** Bodies written in the same turn of the event loop share one fdatasync of their slab. */
  private readonly flushes = new DirSync((file) => this.datasync(file));
  private allocating = false;

  constructor(readonly dir: string) {}

  file(size: number): string {
    return path.join(this.dir, String(size));
  }

  /**
   * Makes this process the allocator: opens every slab, overwrites with zeros any slot that no body maps to but is
   * not zero (a write cut short by a crash, or a zeroing lost to one), and collects the free slots. `mapped` is every
   * slot a message maps to. Returns how many slots it zeroed.
   */
  async startAllocating(mapped: Iterable<SlotRef>): Promise<number> {
    const used = new Map<number, Set<number>>();
    for (const ref of mapped) {
      let set = used.get(ref.size);
      if (!set) used.set(ref.size, (set = new Set()));
      set.add(ref.index);
    }
    let zeroed = 0;
    for (const size of SLOT_SIZES) {
      const fd = this.fd(size);
      if (fd === undefined) continue;
      const capacity = Math.floor(fstatSync(fd).size / size);
      const inUse = used.get(size) ?? new Set<number>();
      const free: number[] = [];
      const slot = Buffer.allocUnsafe(size);
      for (let index = capacity - 1; index >= 0; index--) {
        if (inUse.has(index)) continue;
        const read = readSync(fd, slot, 0, size, index * size);
        if (read !== size || !slot.equals(ZEROS.subarray(0, size))) {
          writeSync(fd, ZEROS, 0, size, index * size);
          zeroed++;
        }
        free.push(index);
      }
      this.slabs.set(size, { fd, capacity, free, named: Promise.resolve() });
    }
    this.allocating = true;
    // Zeros written here need no flush of their own: a crash before they reach the disk is met by this same pass.
    return zeroed;
  }

  get allocates(): boolean {
    return this.allocating;
  }

  /**
   * The allocator: writes `bytes` into a free slot (the page cache, no system call beyond one write) and resolves once
   * they are on disk. The caller maps the slot in the record's transaction; until then the slot is unmapped, and a
   * crash leaves bytes the next start zeroes.
   */
  async put(bytes: Buffer): Promise<SlotRef> {
    if (!this.allocating) throw new Error('body slabs: only the relay holding the spool lock writes into slots');
    const size = slotSizeFor(bytes.length);
    if (size === undefined) throw new RangeError(`body slabs: ${bytes.length} bytes is more than the largest slot`);
    const slab = await this.slabFor(size);
    if (slab.free.length === 0) this.grow(size, slab);
    const index = slab.free.pop()!;
    try {
      writeSync(slab.fd, bytes, 0, bytes.length, index * size);
      await slab.named;
      await this.flushes.sync(String(size));
    } catch (error) {
      // Nothing maps to the slot yet: it goes back zeroed (a zeroing that fails too is met by the next start).
      try {
        this.zero({ size, index });
      } catch {
        throw error;
      }
      this.release([{ size, index }]);
      throw error;
    }
    return { size, index };
  }

  /**
   * Any process: the first `length` bytes of a slot, or undefined when there is no such slab or slot (a slab the
   * allocator shrank since the caller read the mapping). Read from the page cache in one system call.
   */
  read(ref: SlotRef, length: number): Buffer | undefined {
    const fd = this.fd(ref.size);
    if (fd === undefined) return undefined;
    const bytes = Buffer.allocUnsafe(length);
    let filled = 0;
    for (let read = -1; read !== 0 && filled < length; filled += read) read = readSync(fd, bytes, filled, length - filled, ref.index * ref.size + filled);
    return filled === length ? bytes : undefined;
  }

  /** Any process, inside the write transaction that unmaps the slot: its bytes overwritten with zeros. */
  zero(ref: SlotRef): void {
    const fd = this.fd(ref.size);
    if (fd === undefined) return;
    const end = fstatSync(fd).size;
    const start = ref.index * ref.size;
    if (start < end) writeSync(fd, ZEROS, 0, Math.min(ref.size, end - start), start);
  }

  /**
   * The allocator, after the commit that unmapped them: zeroed slots become free again. A slab whose last slots are
   * all free is cut back to one growth step past its last used slot, so a drained backlog gives its disk back.
   */
  release(refs: Iterable<SlotRef>): void {
    if (!this.allocating) return;
    const touched = new Set<number>();
    for (const ref of refs) {
      const slab = this.slabs.get(ref.size);
      if (!slab || ref.index >= slab.capacity) continue;
      insertDescending(slab.free, ref.index);
      touched.add(ref.size);
    }
    for (const size of touched) this.shrink(size, this.slabs.get(size)!);
  }

  /** Free slots per slot size (for tests and the admin view). */
  freeSlots(): Map<number, { capacity: number; free: number }> {
    return new Map([...this.slabs].map(([size, slab]) => [size, { capacity: slab.capacity, free: slab.free.length }]));
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
    this.slabs.clear();
    this.allocating = false;
  }

  /** The slab of a slot size, created (its name made durable before any body in it is acknowledged) on first use. */
  private async slabFor(size: number): Promise<Slab> {
    let slab = this.slabs.get(size);
    if (slab) return slab;
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Checked again after the await: another put may have created it meanwhile.
    slab = this.slabs.get(size);
    if (slab) return slab;
    const fd = openSync(this.file(size), constants.O_RDWR | constants.O_CREAT, 0o600);
    this.fds.set(size, fd);
    // The slab's name, and the slabs/ folder's own name in its parent (made by the first slab), survive a power cut.
    const named = fsyncDir(this.dir).then(() => fsyncDir(path.dirname(this.dir)));
    slab = { fd, capacity: Math.floor(fstatSync(fd).size / size), free: [], named };
    this.slabs.set(size, slab);
    return slab;
  }

  /** More zeroed slots at the slab's end, written at once; the body's fdatasync makes them durable with it. */
  private grow(size: number, slab: Slab): void {
    const slots = Math.max(1, Math.floor(GROW_BYTES / size));
    // From the one buffer of zeros, a slot's worth at a time: no 4 MiB buffer per growth (the queued-RSS target).
    for (let index = slab.capacity; index < slab.capacity + slots; index++) writeSync(slab.fd, ZEROS, 0, size, index * size);
    // Called only when no slot is free: the new ones, highest first, are the whole free list.
    for (let index = slab.capacity + slots - 1; index >= slab.capacity; index--) slab.free.push(index);
    slab.capacity += slots;
  }

  private shrink(size: number, slab: Slab): void {
    const step = Math.max(1, Math.floor(GROW_BYTES / size));
    let tail = 0;
    while (tail < slab.free.length && slab.free[tail] === slab.capacity - 1 - tail) tail++;
    if (tail < 2 * step) return;
    const cut = tail - step;
    slab.capacity -= cut;
    slab.free.splice(0, cut);
    // Not fsynced: a cut lost to a crash brings back zeroed (or, after a lost zeroing, stale) slots the next start zeroes.
    ftruncateSync(slab.fd, slab.capacity * size);
  }

  /** The open slab file of a slot size (read and write), or undefined when there is none. */
  private fd(size: number): number | undefined {
    let fd = this.fds.get(size);
    if (fd !== undefined) return fd;
    try {
      fd = openSync(this.file(size), 'r+');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    this.fds.set(size, fd);
    return fd;
  }

  private datasync(size: string): Promise<void> {
    const fd = this.fds.get(Number(size));
    if (fd === undefined) return Promise.resolve();
    return new Promise((resolve, reject) => fdatasync(fd, (error) => (error ? reject(error) : resolve())));
  }
}

/** Inserts into an array sorted from highest to lowest (so pop() gives the lowest: slabs fill from the front). */
function insertDescending(values: number[], value: number): void {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (values[mid]! > value) low = mid + 1;
    else high = mid;
  }
  if (values[low] !== value) values.splice(low, 0, value);
}
