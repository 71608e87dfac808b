"""Python baseline for the chanflow graph `wordcount` (graphs/wordcount.yaml).

Disco-style MapReduce word count on a multiprocessing.Pool:

  map      each worker reads one ~1 MiB split of the file (whole lines), counts
           its words with collections.Counter and partitions the counts by a
           hash of the word (crc32, the same in every process);
  reduce   each worker merges every split's counts for one partition and keeps
           that partition's 10 most frequent words;
  final    the parent merges the partitions' top 10s.

A word is what text.words emits: the text is split on ASCII whitespace, ASCII
punctuation is stripped at both ends, empty words are dropped and A-Z are
lower-cased (bytes, so no Unicode case or whitespace rules apply). Prints the
top 10 by (-count, word), one `["word", count]` per line, exactly as

    build/bin/chanflow run graphs/wordcount.yaml --set path=PATH

Usage: python3 bench/python/wordcount_pool.py PATH [--procs N]
"""
import argparse
import os
import string
import sys
import zlib
from collections import Counter
from multiprocessing import Pool

SPLIT_BYTES = 1 << 20
TOP = 10
PUNCT = string.punctuation.encode()
LOWER = bytes.maketrans(string.ascii_uppercase.encode(), string.ascii_lowercase.encode())


def splits(path, size=SPLIT_BYTES):
    """(path, start, end) byte ranges of about `size` bytes that end after a newline."""
    end_of_file = os.path.getsize(path)
    result, start = [], 0
    with open(path, "rb") as f:
        while start < end_of_file:
            f.seek(min(start + size, end_of_file))
            f.readline()
            end = min(f.tell(), end_of_file)
            result.append((path, start, end))
            start = end
    return result


def map_split(task):
    """Counts the words of one split; returns one Counter per reduce partition."""
    path, start, end, partitions = task
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    tokens = Counter(data.translate(LOWER).split())
    parts = [Counter() for _ in range(partitions)]
    for token, n in tokens.items():  # strip punctuation once per distinct token
        word = token.strip(PUNCT)
        if word:
            parts[zlib.crc32(word) % partitions][word] += n
    return parts


def reduce_partition(counters):
    """Merges one partition's counts; returns its top words."""
    total = counters[0]
    for c in counters[1:]:
        total.update(c)
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]


def json_string(word):
    """The word as chanflow prints a string: JSON escapes, other bytes as they are."""
    out = bytearray(b'"')
    for c in word:
        if c in b'"\\':
            out += b"\\" + bytes([c])
        elif c in b"\n\r\t\b\f":
            out += {10: b"\\n", 13: b"\\r", 9: b"\\t", 8: b"\\b", 12: b"\\f"}[c]
        elif c < 0x20 or c == 0x7F:
            out += b"\\u%04x" % c
        else:
            out.append(c)
    return bytes(out + b'"')


def main():
    parser = argparse.ArgumentParser(description="MapReduce word count on multiprocessing.Pool")
    parser.add_argument("path")
    parser.add_argument("--procs", type=int, default=2, help="pool size (default 2)")
    args = parser.parse_args()
    partitions = args.procs
    with Pool(args.procs) as pool:
        mapped = pool.map(map_split, [s + (partitions,) for s in splits(args.path)])
        shuffled = [[parts[r] for parts in mapped] or [Counter()] for r in range(partitions)]
        tops = pool.map(reduce_partition, shuffled)
    top = sorted((kv for t in tops for kv in t), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    sys.stdout.buffer.write(b"".join(b"[%s, %d]\n" % (json_string(w), n) for w, n in top))


if __name__ == "__main__":
    main()
