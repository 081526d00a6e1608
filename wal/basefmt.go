package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// The base value format (file format 2). bbolt keeps no checksum of its own, so without one a
// flipped byte in a base page is read back as data, and a flipped byte of a version as a
// version from the future. Each base value therefore carries a CRC-32C (Castagnoli, as the
// log records) of its key, version and value:
//
//	+--------------------+--------------------+-------------------------+
//	| version, 8 bytes BE| CRC-32C, 4 bytes BE| value                   |
//	+--------------------+--------------------+-------------------------+
//	CRC-32C over: key | version (8 bytes BE) | value
//
// The key is covered although bbolt stores it apart: a value that ends up under another key
// (a damaged branch page, a misdirected write) fails its check instead of answering for that
// key. File format 1 had no CRC (version | value); Open upgrades such a file (upgrade.go).
const (
	versionLen    = 8
	baseCRCLen    = 4
	baseHeaderLen = versionLen + baseCRCLen
)

// baseCRC is the checksum a base entry of key carries for version and value.
func baseCRC(key []byte, version uint64, value []byte) uint32 {
	var ver [versionLen]byte
	binary.BigEndian.PutUint64(ver[:], version)
	c := crc32.Update(0, castagnoli, key)
	c = crc32.Update(c, castagnoli, ver[:])
	return crc32.Update(c, castagnoli, value)
}

// appendBase appends the stored form of (key's) version and value to dst.
func appendBase(dst, key []byte, version uint64, value []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, version)
	dst = binary.BigEndian.AppendUint32(dst, baseCRC(key, version, value))
	return append(dst, value...)
}

// splitBase checks a stored base value of key against its CRC and splits it into the value
// and its version. Damage is a *CorruptError naming the key.
func (l *Log) splitBase(key, v []byte) ([]byte, uint64, error) {
	if len(v) < baseHeaderLen {
		return nil, 0, l.baseCorrupt(key, fmt.Sprintf("value of %d bytes is shorter than its %d-byte header", len(v), baseHeaderLen))
	}
	version := binary.BigEndian.Uint64(v)
	value := v[baseHeaderLen:]
	if binary.BigEndian.Uint32(v[versionLen:]) != baseCRC(key, version, value) {
		return nil, 0, l.baseCorrupt(key, "checksum mismatch")
	}
	return value, version, nil
}

func (l *Log) baseCorrupt(key []byte, reason string) error {
	return &CorruptError{Path: l.path, Bucket: "base", Key: bytes.Clone(key), Reason: reason}
}

// decodeBase is splitBase plus the check that the version is not newer than any commit the
// file can hold. A checkpoint writes only versions of commits whose records it has in the log
// or has just covered with meta's checkpoint ts (in the same transaction), so every base
// version is at most max(checkpoint ts, newest log key) as of the same read transaction; a
// larger one is damage the CRC happened to miss or a file written by something else, and is
// reported as corruption rather than handed up to mvcc, which would call it "snapshot too
// old". The bound is cached: only a version above the cached value reads the log's last key.
func (l *Log) decodeBase(tx *bolt.Tx, key, v []byte) ([]byte, uint64, error) {
	value, version, err := l.splitBase(key, v)
	if err != nil {
		return nil, 0, err
	}
	if version == 0 {
		return nil, 0, l.baseCorrupt(key, "version 0 (no commit has ts 0)")
	}
	if version <= l.baseBound.Load() {
		return value, version, nil
	}
	bound := versionBound(tx)
	raiseTo(&l.baseBound, bound)
	if version > bound {
		return nil, 0, l.baseCorrupt(key, fmt.Sprintf(
			"version %d is newer than any commit the file holds (checkpoint ts and newest log record: %d)", version, bound))
	}
	return value, version, nil
}

// versionBound is the newest commit ts the file as of tx holds: the checkpoint ts or the
// newest log record's ts, whichever is larger.
func versionBound(tx *bolt.Tx) uint64 {
	bound := getU64(tx.Bucket(bucketMeta).Get(metaCheckpoint))
	if k, _ := tx.Bucket(bucketLog).Cursor().Last(); len(k) == 8 {
		bound = max(bound, binary.BigEndian.Uint64(k))
	}
	return bound
}

// raiseTo stores v in a if it is larger (a monotonic maximum).
func raiseTo(a *atomic.Uint64, v uint64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}
