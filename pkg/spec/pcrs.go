package spec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// pcrNames are the names systemd takes for PCRs in --tpm2-pcrs= and
// TPM2PCRs= (from 254 on; 252 takes numbers only), as the UAPI PCR
// registry names them.
var pcrNames = map[string]int{
	"platform-code": 0, "platform-config": 1, "external-code": 2, "external-config": 3,
	"boot-loader-code": 4, "boot-loader-config": 5, "host-platform": 6, "secure-boot-policy": 7,
	"kernel-initrd": 9, "ima": 10, "kernel-boot": 11, "kernel-config": 12, "sysexts": 13,
	"shim-policy": 14, "system-identity": 15, "debug": 16, "application-support": 23,
}

// ParsePCRs checks a PCR list (--tpm2-pcrs=, --tpm2-public-key-pcrs=,
// TPM2PCRs=): PCR numbers 0–23, or with names their registry names,
// joined by "+" or ","; empty is no PCRs. It returns the numbers in
// ascending order joined by "+", the form every systemd-cryptenroll
// takes.
func ParsePCRs(v string, names bool) (string, error) {
	if v == "" {
		return "", nil
	}
	var nums []int
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == '+' || r == ',' }) {
		n, err := strconv.Atoi(f)
		switch {
		case err == nil && n >= 0 && n <= 23:
		case err == nil:
			return "", fmt.Errorf("%q is not a PCR number (0–23)", f)
		case strings.Contains(f, ":"):
			return "", fmt.Errorf("%q: sprout takes PCR numbers and names, not PCR values or banks", f)
		default:
			var known bool
			if n, known = pcrNames[f]; !known {
				return "", fmt.Errorf("%q is neither a PCR number (0–23) nor a PCR name", f)
			}
			if !names {
				return "", fmt.Errorf("%q: PCR names were added in systemd 254; this version takes numbers (%s is %d)", f, f, n)
			}
		}
		if !slices.Contains(nums, n) {
			nums = append(nums, n)
		}
	}
	if len(nums) == 0 {
		return "", fmt.Errorf("%q names no PCR", v)
	}
	slices.Sort(nums)
	out := make([]string, len(nums))
	for i, n := range nums {
		out[i] = strconv.Itoa(n)
	}
	return strings.Join(out, "+"), nil
}
