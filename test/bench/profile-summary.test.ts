import { stageOf } from '../../bench/profile-summary';

const frame = (functionName: string, url = '') => ({ functionName, url, lineNumber: 0 });

describe('profile stages', () => {
  test('idle, GC and V8 by name', () => {
    expect(stageOf([frame('(idle)')])).toBe('idle');
    expect(stageOf([frame('(garbage collector)')])).toBe('garbage collector');
    expect(stageOf([frame('(program)')])).toBe('V8 (program)');
  });

  test('native work counts for the nearest frame with a stage; a library nearer the leaf wins over its caller', () => {
    const socketWrite = [frame('writeBuffer'), frame('Socket._write', 'node:net'), frame('send', 'file:///x/node_modules/smtp-server/lib/smtp-connection.js')];
    expect(stageOf(socketWrite)).toBe('inbound SMTP (smtp-server, inbound/)');
    const schema = [frame('parse', 'file:///x/node_modules/zod/lib/types.js'), frame('checkMessage', 'file:///x/src/store/schema.ts')];
    expect(stageOf(schema)).toBe('schema checks (zod, ajv)');
    expect(stageOf([frame('put', 'file:///x/src/store/lmdb/body-slabs.ts')])).toBe('store (records, bodies, LMDB)');
    expect(stageOf([frame('appendLocked', 'file:///x/src/store/file/evidence.ts')])).toBe('evidence log and hash chains');
    expect(stageOf([frame('deliverJob', 'file:///x/src/outbound/engine.ts')])).toBe('outbound SMTP (nodemailer, smtp-client/, outbound/)');
  });

  test('module loading and compiling is start-up wherever it happens; a stack with no known frame is node itself', () => {
    expect(stageOf([frame('transformSync', 'file:///x/node_modules/tsx/dist/register.cjs'), frame('store', 'file:///x/src/store/lmdb/queue.ts')])).toBe('start-up (loading, compiling)');
    expect(stageOf([frame('wrapSafe', 'node:internal/modules/cjs/loader')])).toBe('start-up (loading, compiling)');
    expect(stageOf([frame('onStreamRead', 'node:internal/stream_base_commons')])).toBe('node internals, TLS, sockets');
  });
});
