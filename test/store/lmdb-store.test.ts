import { storeContract } from './contract';
import { lmdbBackend } from './lmdb/harness';

storeContract('lmdb', () => lmdbBackend());
// As the relay opens it (holding the spool lock): small bodies go into slab slots instead of files of their own.
storeContract('lmdb as the relay', () => lmdbBackend({ asRelay: true }));
