package crypto

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

func TestCacheBoundsCountAndTime(t *testing.T) {
	now := time.Unix(0, 0)
	c := newCache(2, time.Minute, func() time.Time { return now })
	keys := map[string][]byte{}
	for _, s := range []string{"a", "b", "c"} {
		keys[s] = bytes.Repeat([]byte(s), KeySize)
		c.put(s, keys[s])
	}
	var dst [KeySize]byte
	if c.get("a", &dst) {
		t.Fatal("a, the least recently used of 3 in a cache of 2, is still there")
	}
	if !bytes.Equal(keys["a"], make([]byte, KeySize)) {
		t.Fatal("an evicted key was not zeroed")
	}
	if !c.get("c", &dst) || dst[0] != 'c' {
		t.Fatal("c missing")
	}
	now = now.Add(2 * time.Minute)
	if c.get("c", &dst) {
		t.Fatal("c outlived its TTL")
	}
	c.put("d", bytes.Repeat([]byte("d"), KeySize))
	c.drop("d")
	if c.get("d", &dst) {
		t.Fatal("d dropped but still there")
	}
	// A lookup that read d's key before it was dropped (erased) cannot put it back for a TTL.
	late := bytes.Repeat([]byte("d"), KeySize)
	c.put("d", late)
	if c.get("d", &dst) || !bytes.Equal(late, make([]byte, KeySize)) {
		t.Fatal("a dropped subject's key was cached again, or not zeroed")
	}
	now = now.Add(2 * time.Minute)
	c.put("d", bytes.Repeat([]byte("d"), KeySize))
	if !c.get("d", &dst) {
		t.Fatal("after the TTL, d's (new) key is refused")
	}
	// A cache that keeps nothing zeroes what it is given.
	none := newCache(0, time.Minute, func() time.Time { return now })
	k := bytes.Repeat([]byte("k"), KeySize)
	none.put("k", k)
	if !bytes.Equal(k, make([]byte, KeySize)) {
		t.Fatal("a cache of size 0 kept the key material")
	}
}

// BenchmarkCacheLookup: a warm key lookup (target <= 200 ns, 0 allocations).
func BenchmarkCacheLookup(b *testing.B) {
	c := newCache(10000, time.Hour, time.Now)
	for i := 0; i < 10000; i++ {
		c.put(fmt.Sprintf("user-%d", i), bytes.Repeat([]byte{1}, KeySize))
	}
	var dst [KeySize]byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !c.get("user-4242", &dst) {
			b.Fatal("miss")
		}
	}
}

// BenchmarkSealOpen1KB seals and opens a 1 KB field.
func BenchmarkSealOpen1KB(b *testing.B) {
	key := bytes.Repeat([]byte{7}, KeySize)
	field := bytes.Repeat([]byte("x"), 1024)
	b.SetBytes(1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s, err := Seal(key, "user-1", "event-1", field)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Open(key, "user-1", "event-1", s); err != nil {
			b.Fatal(err)
		}
	}
}
