/** The notices' DKIM signer is the relay's one (src/mail/dkim.ts), shared with TLS-RPT report mail. */
export { DkimKeyError, loadDkimSigner, type DkimKeyConfig, type DkimSigner } from '../../mail/dkim';
