CF_KERNEL void cf_map(const double* __restrict__ in, unsigned char* __restrict__ out, long long n,
        unsigned long long* first_failure) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        int e = 0;
        const double x = in[i];
        double t0 = cf_f64(4611686018427387904ULL);
        double t1 = x * t0;
        long long t2 = 1LL;
        double t3 = t1 + (double)t2;
        bool t4;
        long long t5 = 0LL;
        t4 = cf_holds(4, cf_cmp_fi(t3, t5));
        double t8;
        if (t4) {
            double t6 = cf_sqrt(t3, e);
            t8 = t6;
        } else {
            double t7 = -t3;
            t8 = t7;
        }
        bool t9;
        long long t10 = 3LL;
        t9 = cf_holds(1, cf_cmp_fi(t8, t10));
        if (t9) {
            long long t11 = 5LL;
            t9 = cf_holds(1, cf_cmp_ii(t10, t11));
        }
        out[i] = t9;
        if (e) cf_fail_at(first_failure, i);
    }
}
