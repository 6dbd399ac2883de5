package cli

import (
	"path/filepath"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/fstab"
	"github.com/sprout-initrd/sprout/pkg/plan"
)

// generated is a file --generate-fstab= or --generate-crypttab= asks for.
type generated struct {
	target  fstab.Target
	content []byte
	changed bool
}

// generatedFiles makes the fstab and crypttab the run writes and checks,
// before anything is written (in a dry run too), that it may write them:
// an existing file that may not be replaced, or a missing directory, is a
// refusal. The paths are under --root, as systemd-repart takes them.
func (r *run) generatedFiles(p *plan.Plan) ([]generated, error) {
	if r.cfg.generateFstab == "" && r.cfg.generateCrypttab == "" {
		// Most boots: nothing to generate, so no file system and LUKS
		// UUIDs to derive (two HMAC-SHA256 per partition).
		return nil, nil
	}
	parts := fstab.Partitions(p)
	var out []generated
	for _, g := range []struct {
		path, key string
		append    fstab.Append
		make      func() (string, bool)
	}{
		{r.cfg.generateFstab, "MountPoint", r.cfg.appendFstab, func() (string, bool) { return fstab.Fstab(parts, r.cfg.compat) }},
		{r.cfg.generateCrypttab, "EncryptedVolume", fstab.AppendNo, func() (string, bool) { return fstab.Crypttab(parts, r.cfg.compat) }},
	} {
		if g.path == "" {
			continue
		}
		text, ok := g.make()
		if !ok {
			r.logf("%s= is not specified for any eligible partitions, not generating %s", g.key, g.path)
			continue
		}
		t := fstab.Target{Path: filepath.Join(r.cfg.root, g.path), Append: g.append}
		content, changed, err := t.Content(text)
		if err != nil {
			return nil, err
		}
		out = append(out, generated{target: t, content: content, changed: changed})
	}
	return out, nil
}

// showGenerated says, in a dry run, what the files would hold.
func (r *run) showGenerated(files []generated) {
	for _, f := range files {
		if !f.changed {
			r.logf("%s already holds what this run generates.", f.target.Path)
			continue
		}
		r.logf("Would write %s:", f.target.Path)
		for _, line := range strings.SplitAfter(string(f.content), "\n") {
			if line != "" {
				r.logf("    %s", strings.TrimSuffix(line, "\n"))
			}
		}
	}
}

// writeGenerated writes the files once the disk is done (a refused or
// failed run writes none). A file that already holds these bytes is left
// alone.
func (r *run) writeGenerated(files []generated) error {
	for _, f := range files {
		if !f.changed {
			continue
		}
		if err := fstab.Write(f.target.Path, f.content); err != nil {
			return err
		}
		r.logf("%s written.", f.target.Path)
	}
	return nil
}
