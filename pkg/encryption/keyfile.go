package encryption

// KeyFile (Encrypt=key-file): one key slot, for the --key-file= key (the
// empty key by default, as in 252).
const KeyFile Mode = "key-file"

func keyFile() Declaration { return Declaration{Mode: KeyFile, KeyFile: true, Needs: luks2Needs} }
