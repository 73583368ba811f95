import { assertDnssecTools, missingDnssecTools } from '../support/dnssec';

/** The DNSSEC harness fails loudly, naming the tools and .ci/run, when nsd/unbound/ldnsutils are missing. */
describe('DNSSEC tools check', () => {
  test('names every missing binary and .ci/run', async () => {
    const absent = ['/nonexistent/sealgate/nsd', '/nonexistent/sealgate/unbound'];
    await expect(missingDnssecTools([process.execPath, ...absent])).resolves.toEqual(absent);
    await expect(assertDnssecTools(absent)).rejects.toThrow(/nsd, \/nonexistent\/sealgate\/unbound .*\.ci\/run/);
  });

  test('passes when the tools are there (the test machine has them: .ci/run installs them)', async () => {
    await expect(missingDnssecTools()).resolves.toEqual([]);
    await expect(assertDnssecTools()).resolves.toBeUndefined();
  });
});
