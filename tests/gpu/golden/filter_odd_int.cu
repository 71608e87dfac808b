CF_KERNEL void cf_filter(const long long* __restrict__ in, unsigned char* __restrict__ keep, long long n,
        unsigned long long* first_failure) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        int e = 0;
        const long long x = in[i];
        bool t0;
        long long t1 = 2LL;
        long long t2 = cf_mod_ii(x, t1, e);
        long long t3 = 1LL;
        t0 = cf_holds(2, cf_cmp_ii(t2, t3));
        keep[i] = t0 ? 1 : 0;
        if (e) cf_fail_at(first_failure, i);
    }
}
