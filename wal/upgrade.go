package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The format-1 upgrade. A format-1 file's base values are version | value, with no checksum.
// Open rewrites each of them in the checksummed format (basefmt.go) before the database is
// used, in chunks of at most Options.CheckpointChunk entries and CheckpointChunkBytes bytes,
// each one bbolt transaction (bounded memory, and the pages one chunk frees serve the next),
// that also records how far it got:
//
//	meta.format   1 ──▶ 2 (in the first chunk's transaction)
//	meta.upgrade  absent ──▶ last key converted ──▶ ... ──▶ deleted (in the last chunk's)
//
//	base keys:  [ converted (format 2) | ≤ meta.upgrade ]  [ not yet (format 1) ]
//
// A crash or failure between chunks leaves format 2 with the marker: the next Open resumes
// after the marker. Format 2 is written first so that a build that reads only format 1
// refuses the half-converted file instead of reading checksums as data. No reader runs
// during the upgrade (it is part of Open), so nothing ever reads a mixed base.
//
// A format-1 value cannot be checked beyond its length and its version's bound (it is not
// newer than any commit the file holds): the upgrade refuses a file that fails either, naming
// the key, and seals whatever else it finds under the new checksum.

// metaUpgrade is the meta key of an unfinished upgrade: the last base key converted.
var metaUpgrade = []byte("upgrade")

// upgradeBase converts the base to the checksummed format, resuming after meta.upgrade.
func (l *Log) upgradeBase() error {
	var chunks int
	for {
		done, err := l.upgradeChunk()
		if err != nil {
			return fmt.Errorf("txkv: open %q: upgrading the base to format %d: %w", l.path, FormatVersion, err)
		}
		chunks++
		if done {
			l.log.Info("upgraded the base to the checksummed format", "format", FormatVersion, "transactions", chunks)
			return nil
		}
	}
}

// upgradeChunk converts the next chunk of base entries in one transaction and reports
// whether the base is now fully converted. Options.BeforeCheckpointCommit runs before its
// commit, so tests can fail an upgrade between chunks.
func (l *Log) upgradeChunk() (done bool, err error) {
	var inputErr error
	err = l.update(l.opts.BeforeCheckpointCommit, func(tx *bolt.Tx) error {
		var keys, vals [][]byte
		keys, vals, done, inputErr = l.convertChunk(tx)
		if inputErr != nil {
			return inputErr
		}
		b := tx.Bucket(bucketBase)
		for i := range keys {
			if err := b.Put(keys[i], vals[i]); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(metaFormat, putU64(FormatVersion)); err != nil {
			return err
		}
		if done {
			return meta.Delete(metaUpgrade)
		}
		return meta.Put(metaUpgrade, keys[len(keys)-1])
	})
	if inputErr != nil {
		return false, inputErr
	}
	return done, err
}

// convertChunk reads the next format-1 entries after meta.upgrade and returns their keys and
// their values in the checksummed format (copies: the caller puts them into the bucket its
// cursor walked), and whether no entry is left after them.
func (l *Log) convertChunk(tx *bolt.Tx) (keys, vals [][]byte, done bool, err error) {
	bound := versionBound(tx)
	c := tx.Bucket(bucketBase).Cursor()
	k, v := c.First()
	if mark := tx.Bucket(bucketMeta).Get(metaUpgrade); mark != nil {
		k, v = seekFrom(c, nil, mark)
	}
	var size int64
	for ; k != nil; k, v = c.Next() {
		if len(keys) >= l.opts.CheckpointChunk || size >= l.opts.CheckpointChunkBytes {
			return keys, vals, false, nil
		}
		if err := l.checkElem(tx, "base", k, v); err != nil {
			return nil, nil, false, err
		}
		version, value, err := l.splitFormat1(k, v, bound)
		if err != nil {
			return nil, nil, false, err
		}
		keys = append(keys, bytes.Clone(k))
		vals = append(vals, appendBase(nil, k, version, value))
		size += int64(len(k) + baseHeaderLen + len(value))
	}
	return keys, vals, true, nil
}

// splitFormat1 splits a format-1 base value (version | value), checking what can be checked.
func (l *Log) splitFormat1(key, v []byte, bound uint64) (uint64, []byte, error) {
	if len(v) < versionLen {
		return 0, nil, l.baseCorrupt(key, fmt.Sprintf("format-1 value of %d bytes has no 8-byte version", len(v)))
	}
	version := binary.BigEndian.Uint64(v)
	if version == 0 || version > bound {
		return 0, nil, l.baseCorrupt(key, fmt.Sprintf(
			"format-1 version %d is not a commit the file holds (checkpoint ts and newest log record: %d)", version, bound))
	}
	return version, v[versionLen:], nil
}
