import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Members that never appear in a log line, at the top level or one level down (`password`, `tls.password`). */
const SENSITIVE = ['password', 'pass', 'subject', 'body'] as const;
const CENSOR = '[redacted]';

function hasSensitiveMember(value: object): boolean {
  for (const key of SENSITIVE) if (Object.prototype.hasOwnProperty.call(value, key) && Object.prototype.propertyIsEnumerable.call(value, key)) return true;
  return false;
}

/**
 * `value` with its own sensitive members censored: the value itself when it has none (nearly always), else a
 * copy with the same prototype and own enumerable members. Arrays and non-objects are returned as they are.
 */
function censorMembers<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || !hasSensitiveMember(value)) return value;
  const copy = Object.create(Object.getPrototypeOf(value) as object | null) as Record<string, unknown>;
  for (const key in value) if (Object.prototype.hasOwnProperty.call(value, key)) copy[key] = (value as Record<string, unknown>)[key];
  for (const key of SENSITIVE) if (Object.prototype.hasOwnProperty.call(copy, key)) copy[key] = CENSOR;
  return copy as T;
}

/**
 * The logged object (or a child's bindings) with every member's sensitive members censored; the object itself when
 * there is nothing to censor. `err` is left to its serializer, which censors what it makes of the error.
 */
function censorNested(object: Record<string, unknown>): Record<string, unknown> {
  let result = object;
  for (const key in object) {
    if (key === 'err' || !Object.prototype.hasOwnProperty.call(object, key)) continue;
    const value = object[key];
    const censored = censorMembers(value);
    if (censored === value) continue;
    if (result === object) result = { ...object };
    result[key] = censored;
  }
  return result;
}

/** How long an info, debug or trace line may wait to be written together with the lines after it. */
export const LOG_BATCH_MS = 10;

/** Lines written at once, with whatever waits before them: warnings, errors and fatal lines. */
function urgent(line: string): boolean {
  return !(line.startsWith('{"level":"info"') || line.startsWith('{"level":"debug"') || line.startsWith('{"level":"trace"'));
}

/** The batched destinations' flushes, for the process's last moments. */
const atExit = new Set<{ flush(): void; flushSync(): void }>();
let exitHooked = false;

/**
 * A file descriptor written asynchronously (pino's SonicBoom), in batches: each asynchronous write hands the
 * line to libuv's thread pool and back, which costs more CPU than the line itself, and a relay under load
 * writes two lines per message. Info, debug and trace lines wait up to LOG_BATCH_MS for the lines after them;
 * a warning or worse goes out at once, with everything before it. At exit (and before the event loop runs
 * dry) whatever waits is handed over first and written synchronously, as pino does for its own buffer.
 */
export function batchedDestination(fd: number, batchMs = LOG_BATCH_MS): pino.DestinationStream & { flush(cb?: (err?: Error) => void): void } {
  const sonic = pino.destination({ fd, sync: false });
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const handOver = (): void => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pending === '') return;
    const lines = pending;
    pending = '';
    sonic.write(lines);
  };
  atExit.add({
    flush: handOver,
    flushSync: () => {
      handOver();
      try {
        sonic.flushSync();
      } catch {
        // Closed already (or never opened): nothing is left to write.
      }
    },
  });
  if (!exitHooked) {
    exitHooked = true;
    // Prepended, so these run before pino's own exit handlers end or flush the streams.
    process.prependListener('beforeExit', () => atExit.forEach((destination) => destination.flush()));
    process.prependListener('exit', () => atExit.forEach((destination) => destination.flushSync()));
  }
  return {
    write(line: string): void {
      pending += line;
      if (urgent(line)) handOver();
      else if (!timer) {
        timer = setTimeout(handOver, batchMs);
        timer.unref();
      }
    },
    flush(cb?: (err?: Error) => void): void {
      handOver();
      sonic.flush(cb);
    },
  };
}

/**
 * JSON-lines logger. Message content never goes here: callers log envelope metadata, queue ids,
 * decisions and TLS facts only. The redaction is a second line of defence for fields that must never
 * appear even by accident: pino censors the top-level members; the members one level down are censored
 * here, copying only an object that has one (pino's own wildcard redaction copies every object-valued member
 * of every line, which is most of a log line's cost). A file descriptor is written in batches
 * (batchedDestination).
 */
export function createLogger(level: LevelWithSilent = 'info', destination: pino.DestinationStream | number = 1): Logger {
  const stream = typeof destination === 'number' ? batchedDestination(destination) : destination;
  const logger = pino(
    {
      level,
      base: { service: 'sealgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...SENSITIVE], censor: CENSOR },
      serializers: { err: (err: unknown) => censorMembers(pino.stdSerializers.err(err as Error)) },
      formatters: {
        level: (label) => ({ level: label }),
        log: censorNested,
      },
    },
    stream,
  );
  // pino applies a bindings formatter to the root's bindings only; every child (and its children, which inherit
  // this member) passes its bindings through here instead.
  type ChildOf = (this: unknown, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => unknown;
  // pino's own, called on whichever logger the child is made from (hence read unbound).
  const child = (logger as unknown as { child: ChildOf }).child;
  const censoredChild: ChildOf = function (this: unknown, bindings, options) {
    return child.call(this, censorNested(bindings), options);
  };
  logger.child = censoredChild as unknown as Logger['child'];
  return logger;
}

/** A logger that writes nothing, for library use and tests that do not inspect logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
