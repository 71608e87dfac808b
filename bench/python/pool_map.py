"""Python baseline for the chanflow graph `pool_map` (graphs/pool_map.yaml).

multiprocessing's Pool example: squares range(N) on a Pool and prints every
result in input order, one per line, exactly as

    build/bin/chanflow run graphs/pool_map.yaml --set n=N

Usage: python3 bench/python/pool_map.py N [--procs P]
"""
import argparse
import sys
from multiprocessing import Pool


def square(x):
    return x * x


def main():
    parser = argparse.ArgumentParser(description="Pool(P).map(square, range(N))")
    parser.add_argument("n", type=int)
    parser.add_argument("--procs", type=int, default=2, help="pool size (default 2)")
    args = parser.parse_args()
    with Pool(args.procs) as p:
        results = p.map(square, range(args.n))
    if results:
        sys.stdout.write("\n".join(map(str, results)) + "\n")


if __name__ == "__main__":
    main()
