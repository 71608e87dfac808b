CF_KERNEL void cf_map(const long long* __restrict__ in, unsigned char* __restrict__ out, long long n,
        unsigned long long* first_failure) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        int e = 0;
        const long long x = in[i];
        bool t0;
        long long t1 = 0LL;
        t0 = cf_holds(4, cf_cmp_ii(x, t1));
        bool t6 = t0;
        if (t0) {
            bool t2;
            long long t3 = 3LL;
            long long t4 = cf_mod_ii(x, t3, e);
            long long t5 = 0LL;
            t2 = cf_holds(2, cf_cmp_ii(t4, t5));
            t6 = t2;
        }
        bool t8 = t6;
        if (!t6) {
            bool t7 = !cf_truthy_i(x);
            t8 = t7;
        }
        out[i] = t8;
        if (e) cf_fail_at(first_failure, i);
    }
}
