"""mpi4py's ping-pong: n round trips of a Python int with comm.send/recv between ranks 0
and 1 (what chanflow_mpi_bench compares the MPI backend with). Rank 0 prints the seconds
of the exchange alone: `seconds X`."""
import sys
import time

from mpi4py import MPI


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    comm.Barrier()
    t0 = time.perf_counter()
    if rank == 0:
        for i in range(n):
            comm.send(i, dest=1)
            comm.recv(source=1)
    elif rank == 1:
        for _ in range(n):
            comm.send(comm.recv(source=0), dest=0)
    elapsed = time.perf_counter() - t0
    if rank == 0:
        print(f"seconds {elapsed:.9f}")


if __name__ == "__main__":
    main()
