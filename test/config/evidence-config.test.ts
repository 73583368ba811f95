import path from 'node:path';
import { parseConfig } from '../../src/config/load';
import { configErrorOf } from './config-error';

const dir = '/srv/sealgate/config';
const listeners = [{ name: 'sub', port: 2587, tls: 'starttls', auth: 'required' }];
const parse = (raw: Record<string, unknown>) => parseConfig({ listeners, ...raw }, {}, dir);

describe('evidence and reports config', () => {
  it('puts the evidence folder and the reports folder next to the queue by default, and keeps evidence six years', () => {
    const config = parse({ queue: { path: '/var/spool/sealgate/queue' } });
    expect(config.evidence).toEqual({ path: '/var/spool/sealgate/evidence', anchorCopy: null, retention: 6 * 366 * 86_400_000 });
    expect(config.reports).toMatchObject({ schedule: 'off', folder: '/var/spool/sealgate/reports', formats: ['html', 'csv'], mailTo: [] });
  });

  it('resolves relative folders against the config folder', () => {
    const config = parse({ evidence: { path: 'ev', anchorCopy: '../anchors' }, reports: { folder: 'out' } });
    expect(config.evidence.path).toBe(path.join(dir, 'ev'));
    expect(config.evidence.anchorCopy).toBe('/srv/sealgate/anchors');
    expect(config.reports.folder).toBe(path.join(dir, 'out'));
  });

  it('refuses evidence retention shorter than the message records it describes', () => {
    expect(configErrorOf(() => parse({ queue: { keepFinished: '30d' }, evidence: { retention: '7d' } }))).toMatch(/evidence\.retention.*queue\.keepFinished/);
    expect(parse({ queue: { keepFinished: '30d' }, evidence: { retention: '30d' } }).evidence.retention).toBe(30 * 86_400_000);
  });

  it('refuses a report schedule or a mail address it does not know', () => {
    expect(configErrorOf(() => parse({ reports: { schedule: 'hourly' } }))).toMatch(/reports\.schedule/);
    expect(configErrorOf(() => parse({ reports: { mailTo: ['not an address'] } }))).toMatch(/reports\.mailTo/);
  });
});
