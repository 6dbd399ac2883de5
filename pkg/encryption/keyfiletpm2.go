package encryption

// KeyFileTPM2 (Encrypt=key-file+tpm2): both keys, the key file's in slot
// 0 and the TPM2's in slot 1.
const KeyFileTPM2 Mode = "key-file+tpm2"

func keyFileTPM2() Declaration {
	return Declaration{Mode: KeyFileTPM2, KeyFile: true, TPM2: true, Needs: luks2Needs.Plus(tpm2Needs)}
}
