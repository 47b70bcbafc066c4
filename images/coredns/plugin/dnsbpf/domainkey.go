package dnsbpf

// FNV-1a, 64 bits (http://www.isthe.com/chongo/tech/comp/fnv/).
const (
	fnv64Offset = 0xcbf29ce484222325
	fnv64Prime  = 0x100000001b3
)

// DomainKey is the key that names a rule's destination in the BPF maps (the `dns_cache` values and
// the `route_map` keys): 64-bit FNV-1a over the destination exactly as rules write it, so
// "example.com" and ".example.com" are different destinations. The TypeScript core computes the
// same function (src/core/firewall/domainKey.ts); both are held to test/vectors/domain-keys.json.
//
// Destinations are ASCII (setup refuses anything else), so hashing the bytes of the Go string is
// hashing the ASCII codes, as the TypeScript side does.
func DomainKey(destination string) uint64 {
	hash := uint64(fnv64Offset)
	for i := 0; i < len(destination); i++ {
		hash ^= uint64(destination[i])
		hash *= fnv64Prime
	}
	return hash
}
