import { storeContract } from './contract';
import { lmdbBackend } from './lmdb/harness';

storeContract('lmdb', () => lmdbBackend());
