import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../../src/config/load';
import { silentLogger } from '../../../src/log/logger';
import { startPortalRuntime } from '../../../src/portal/service';
import { FileStore } from '../../../src/store/file/file-store';
import { chunked, evidence, newMessage } from '../../store/contract';
import { FakeCopies, FakeNotices } from './fakes';

/** The runtime the relay starts: timers hand diverted recipients over; notice outcomes reach the service. */

let dir: string;
let store: FileStore;

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-portal-start-'));
  store = new FileStore({ path: dir, keepFinished: 86_400_000, logger: silentLogger() });
  await store.open();
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function until(predicate: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('hands a diverted recipient over on its own and records the notice outcome (with the subject flag audited)', async () => {
  const config = parseConfig({ listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }], portal: { includeOriginalSubject: true } }, {}, dir);
  const copies = new FakeCopies();
  const notices = new FakeNotices();
  const runtime = await startPortalRuntime({
    config,
    logger: silentLogger(),
    store,
    instance: 'r1',
    parts: async () => ({ copies, notices, keys: { addKeyEncryptionKey: async () => 'k2', retireKeyEncryptionKeys: async () => [], reopen: async () => copies } }),
  });
  try {
    await store.enqueue(newMessage(['pat@weak.test']), chunked(Buffer.from('Subject: hello\r\n\r\nbody\r\n')));
    const [claimed] = await store.claimDue('w1', 1, 60_000);
    await store.completeJob(claimed!.job.id, 'w1', { recipients: [{ address: 'pat@weak.test', outcome: 'diverted', evidence: evidence('diverted', 'starttls-not-offered') }] });
    await until(async () => (await store.listFallback({ state: 'acked' })).length === 1);
    const [item] = await copies.list();
    expect(notices.sent).toMatchObject([{ kind: 'portal-link', originalSubject: 'hello' }]);
    runtime.noticeObserver.noticeFinished({ queueId: 'N1', itemId: item!.id, kind: 'portal-link', recipient: 'pat@weak.test', outcome: 'delivered', reason: 'notice-delivered', tls: 'TLSv1.3' });
    await until(() => copies.items.get(item!.id)!.state === 'notified');
    expect((await copies.events(item!.id)).at(-1)).toMatchObject({ type: 'notify.sent', detail: { originalSubject: true, tls: 'TLSv1.3' } });
  } finally {
    await runtime.close();
  }
});
