CF_KERNEL void cf_reduce(const double* __restrict__ in, long long n, double* __restrict__ partial,
        unsigned char* has, unsigned long long* first_failure) {
    __shared__ double s_acc[256];
    __shared__ unsigned char s_has[256];
    double acc = 0;
    bool have = false;
    int ov = 0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        int e = 0;
        const double x = in[i];
        double t0 = x * x;
        const double v = t0;
        if (e) cf_fail_at(first_failure, i);
        if (have) {
            const double r = acc, o = v;
            acc = r + o;
        } else {
            acc = v;
            have = true;
        }
    }
    s_acc[threadIdx.x] = acc;
    s_has[threadIdx.x] = have;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half && s_has[threadIdx.x + half]) {
            const double r = s_acc[threadIdx.x], o = s_acc[threadIdx.x + half];
            s_acc[threadIdx.x] = s_has[threadIdx.x] ? (r + o) : o;
            s_has[threadIdx.x] = 1;
        }
        __syncthreads();
    }
    if (ov) cf_fail_at(first_failure, CF_COMBINE_FAILED);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = s_acc[0];
        has[blockIdx.x] = s_has[0];
    }
}
CF_KERNEL void cf_reduce_partials(const double* __restrict__ in, const unsigned char* __restrict__ in_has, long long n,
        double* __restrict__ partial, unsigned char* has, unsigned long long* first_failure) {
    __shared__ double s_acc[256];
    __shared__ unsigned char s_has[256];
    double acc = 0;
    bool have = false;
    int ov = 0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        if (!in_has[i]) continue;
        const double v = in[i];
        if (have) {
            const double r = acc, o = v;
            acc = r + o;
        } else {
            acc = v;
            have = true;
        }
    }
    s_acc[threadIdx.x] = acc;
    s_has[threadIdx.x] = have;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half && s_has[threadIdx.x + half]) {
            const double r = s_acc[threadIdx.x], o = s_acc[threadIdx.x + half];
            s_acc[threadIdx.x] = s_has[threadIdx.x] ? (r + o) : o;
            s_has[threadIdx.x] = 1;
        }
        __syncthreads();
    }
    if (ov) cf_fail_at(first_failure, CF_COMBINE_FAILED);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = s_acc[0];
        has[blockIdx.x] = s_has[0];
    }
}
