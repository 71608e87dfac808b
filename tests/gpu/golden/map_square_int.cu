CF_KERNEL void cf_map(const long long* __restrict__ in, long long* __restrict__ out, long long n,
        unsigned long long* first_failure) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        int e = 0;
        const long long x = in[i];
        long long t0 = cf_mul_ii(x, x, e);
        out[i] = t0;
        if (e) cf_fail_at(first_failure, i);
    }
}
