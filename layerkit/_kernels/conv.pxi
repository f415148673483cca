# Included by layerkit/_core.pyx: 2-D convolution (1-D is the case H = 1),
# sample by sample, with the GIL released: by the direct kernels of
# ``conv_direct.h`` where ``conv_algorithm`` picks them (stride 1, dilation 1,
# one group, AVX-512), else by im2col and BLAS gemm as laid out below.
#
# Layouts (row-major, as the arrays are C-contiguous):
#   x   (n, C, H, W)           the input
#   W   (O, C/g, kh, kw)       the weights, torch's layout: group g's block is
#                              the (O/g) x (C/g*kh*kw) matrix at row g*O/g
#   y   (n, O, Ho, Wo)         the output
#   col (C*kh*kw, m*Ho*Wo)     the patches of a chunk of m samples: row (c, i, j)
#                              holds input channel c at kernel offset (i, j) for
#                              every output position of every sample of the
#                              chunk, zero where it falls in the padding
# Group g's rows of ``col`` are the contiguous block of its input channels, so
# every product is one gemm per chunk and group on pointers: no transposes.
# The chunk's outputs (forward) or output gradients (backward) sit by channel,
# (O, m*Ho*Wo), in the scratch after ``col``, and are copied from or to the
# (n, O, Ho, Wo) arrays row by row.
#
# The geometry is checked by the caller (``layerkit.layers.conv``); the entry
# functions re-check every size that guards memory (``_check_block``).

cdef struct ConvGeometry:
    Py_ssize_t n, C, H, W, O, kh, kw, sh, sw, ph, pw, ph_after, pw_after, dh, dw, groups, Ho, Wo


cdef int _check_block(cnp.ndarray a, int typenum, Py_ssize_t size, bint writeable) except -1:
    """``a`` is a C-contiguous native array of dtype ``typenum`` with ``size`` elements."""
    if cnp.PyArray_TYPE(a) != typenum or not cnp.PyArray_ISNOTSWAPPED(a):
        raise ValueError("layerkit._core: arrays of one call must share one native float dtype")
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError("layerkit._core: expected a C-contiguous array")
    if cnp.PyArray_SIZE(a) != size:
        raise ValueError("layerkit._core: array has the wrong size for the geometry")
    if writeable and not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError("layerkit._core: output buffer is read-only")
    return 0


cdef int _geometry(tuple shape, ConvGeometry* g) except -1:
    """Fill ``g`` from ``(n, C, H, W, O, kh, kw, sh, sw, ph, pw, ph_after, pw_after, dh, dw, groups)``.

    ``ph``/``pw`` pad before each axis, ``ph_after``/``pw_after`` after it;
    the output size ``Ho``, ``Wo`` follows.
    """
    if len(shape) != 16:
        raise ValueError("layerkit._core: a convolution geometry has 16 integers")
    g.n, g.C, g.H, g.W, g.O, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.ph_after, g.pw_after, g.dh, g.dw, g.groups = shape
    if (g.n < 0 or g.C < 1 or g.H < 1 or g.W < 1 or g.O < 1 or g.kh < 1 or g.kw < 1 or g.sh < 1 or g.sw < 1
            or g.ph < 0 or g.pw < 0 or g.ph_after < 0 or g.pw_after < 0 or g.dh < 1 or g.dw < 1 or g.groups < 1
            or g.C % g.groups != 0 or g.O % g.groups != 0):
        raise ValueError("layerkit._core: invalid convolution geometry")
    g.Ho = (g.H + g.ph + g.ph_after - g.dh * (g.kh - 1) - 1) // g.sh + 1
    g.Wo = (g.W + g.pw + g.pw_after - g.dw * (g.kw - 1) - 1) // g.sw + 1
    if g.Ho < 1 or g.Wo < 1:
        raise ValueError("layerkit._core: the kernel is larger than the padded input")
    if (g.C * g.kh * g.kw > 2147483647 or g.Ho * (g.W + g.pw + g.pw_after) > 2147483647 or g.O > 2147483647):
        raise ValueError("layerkit._core: dimension too large for BLAS")
    return 0


cdef extern from "_kernels/conv.h" nogil:
    void lk_im2col_f(const float* x, float* col, Py_ssize_t ld, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                     Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                     Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t Ho, Py_ssize_t Wo)
    void lk_im2col_d(const double* x, double* col, Py_ssize_t ld, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                     Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                     Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t Ho, Py_ssize_t Wo)
    void lk_col2im_f(const float* col, Py_ssize_t ld, float* dx, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                     Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                     Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t Ho, Py_ssize_t Wo)
    void lk_col2im_d(const double* col, Py_ssize_t ld, double* dx, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                     Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                     Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t Ho, Py_ssize_t Wo)
    float lk_sum_f(const float* a, Py_ssize_t n)
    double lk_sum_d(const double* a, Py_ssize_t n)


cdef extern from "_kernels/conv_direct.h" nogil:
    ctypedef struct lk_dc_geom:
        Py_ssize_t C, H, W, O, kh, kw, ph, pw, Hp, Wp, Ho, Wo
    int lk_cpu_has_v4()
    int lk_simd_kernels
    Py_ssize_t lk_dc_scratch_forward_spatial_f(const lk_dc_geom* g)
    Py_ssize_t lk_dc_scratch_forward_spatial_d(const lk_dc_geom* g)
    Py_ssize_t lk_dc_scratch_forward_channel_f(const lk_dc_geom* g)
    Py_ssize_t lk_dc_scratch_forward_channel_d(const lk_dc_geom* g)
    Py_ssize_t lk_dc_scratch_wgrad_spatial_f(const lk_dc_geom* g)
    Py_ssize_t lk_dc_scratch_wgrad_spatial_d(const lk_dc_geom* g)
    Py_ssize_t lk_dc_scratch_wgrad_channel_f(const lk_dc_geom* g)
    Py_ssize_t lk_dc_scratch_wgrad_channel_d(const lk_dc_geom* g)
    void lk_dc_forward_spatial_f(const float* x, const float* w, const float* b, float* y, float* scratch,
                                 const lk_dc_geom* g, Py_ssize_t n)
    void lk_dc_forward_spatial_d(const double* x, const double* w, const double* b, double* y, double* scratch,
                                 const lk_dc_geom* g, Py_ssize_t n)
    void lk_dc_forward_channel_f(const float* x, const float* w, const float* b, float* y, float* scratch,
                                 const lk_dc_geom* g, Py_ssize_t n)
    void lk_dc_forward_channel_d(const double* x, const double* w, const double* b, double* y, double* scratch,
                                 const lk_dc_geom* g, Py_ssize_t n)
    void lk_dc_wgrad_spatial_f(const float* x, const float* dy, float* dw, float* scratch, const lk_dc_geom* g,
                               Py_ssize_t n)
    void lk_dc_wgrad_spatial_d(const double* x, const double* dy, double* dw, double* scratch,
                               const lk_dc_geom* g, Py_ssize_t n)
    void lk_dc_wgrad_channel_f(const float* x, const float* dy, float* dw, float* scratch, const lk_dc_geom* g,
                               Py_ssize_t n)
    void lk_dc_wgrad_channel_d(const double* x, const double* dy, double* dw, double* scratch,
                               const lk_dc_geom* g, Py_ssize_t n)
    Py_ssize_t lk_dc_scratch_xgrad_wide_f(const lk_dc_geom* g)
    Py_ssize_t lk_dc_scratch_xgrad_wide_d(const lk_dc_geom* g)
    void lk_dc_spread_f(const float* dy, float* dyq, const lk_dc_geom* g)
    void lk_dc_spread_d(const double* dy, double* dyq, const lk_dc_geom* g)
    void lk_dc_col2im_wide_f(const float* dcolq, float* dxp, float* dx, const lk_dc_geom* g)
    void lk_dc_col2im_wide_d(const double* dcolq, double* dxp, double* dx, const lk_dc_geom* g)
    void lk_dc_xgrad_channel_f(const float* dy, const float* w, float* dx, float* scratch, const lk_dc_geom* g,
                               Py_ssize_t n)
    void lk_dc_xgrad_channel_d(const double* dy, const double* w, double* dx, double* scratch,
                               const lk_dc_geom* g, Py_ssize_t n)

cdef extern from "_kernels/conv_winograd.h" nogil:
    Py_ssize_t lk_wg_scratch_f(const lk_dc_geom* g)
    Py_ssize_t lk_wg_wgrad_scratch_f(const lk_dc_geom* g)
    void lk_wg_wgrad_f(const float* x, const float* dy, float* dw, float* scratch, const lk_dc_geom* g,
                       Py_ssize_t n)
    void lk_wg_forward_f(const float* x, const float* w, const float* b, float* y, float* scratch,
                         const lk_dc_geom* g, Py_ssize_t n, int flip)
    int lk_use_v4()


# Direct convolution (``conv_direct.h``) or im2col and gemm, per product:
#   0 "auto": direct where it is faster, as measured on LeNet-5's and a ResNet block's layers
#     (AVX-512, one and two threads): stride 1, dilation 1, one group, on a CPU with AVX-512 while the
#     BLAS runs at most two threads (the direct kernels run one); the forward pass and
#     the weight gradient when the output channels fill the vector lanes (a multiple of 16 in float32,
#     8 in float64) or are fewer than the lanes, the input gradient when the input channels fill them;
#   1 "im2col": always im2col and gemm;
#   2 "direct": direct wherever the geometry allows (stride 1, dilation 1, one group), on any CPU;
#   3 "winograd": as "auto", and Winograd's F(2x2, 3x3) (``conv_winograd.h``) for every float32 forward
#     pass and input gradient it can take: a 3x3 kernel, stride 1, dilation 1, one group, 16k output
#     channels (input channels for the input gradient), AVX-512. "auto" takes it where measured faster
#     than the direct kernels: at least 8 channels in, and the rows of 2x2 tiles filling at least 70% of
#     the lanes of their blocks (16 tiles of a row, or 8 of each of two rows when a row has at most 8, or
#     4 of each of four when it has at most 4:
#     28 or 32 columns, 88 and 100%, ran 1.5 and 2.3x faster than direct on 16 to 64 channels; one row of
#     7 tiles alone in 16 lanes, 44%, ran 7% slower).
cdef int _algorithm_setting = 0
_ALGORITHMS = ("auto", "im2col", "direct", "winograd")


def conv_algorithm(name=None):
    """Set how convolutions run: ``"auto"``, ``"im2col"``, ``"direct"`` or ``"winograd"``; returns the previous one.

    ``None`` leaves it unchanged. For the benchmarks and the tests, which run
    every product both ways.
    """
    global _algorithm_setting
    previous = _ALGORITHMS[_algorithm_setting]
    if name is not None:
        if name not in _ALGORITHMS:
            raise ValueError(f"layerkit._core: conv_algorithm expects one of {_ALGORITHMS}, got {name!r}")
        _algorithm_setting = _ALGORITHMS.index(name)
    return previous


def simd_available():
    """Whether this CPU has the AVX-512 extensions the direct convolution and pooling kernels are built for."""
    return bool(lk_cpu_has_v4())


def simd_kernels(enabled=None):
    """Whether the direct convolution and 2x2 max pooling use their AVX-512 kernels where the CPU has them
    (``True``, the default) or their portable C everywhere; returns the previous setting.

    ``None`` leaves it unchanged. For the tests, which check both against each other.
    """
    global lk_simd_kernels
    previous = bool(lk_simd_kernels)
    if enabled is not None:
        lk_simd_kernels = 1 if enabled else 0
    return previous


cdef inline bint _direct_geometry(ConvGeometry* g) noexcept nogil:
    return g.sh == 1 and g.sw == 1 and g.dh == 1 and g.dw == 1 and g.groups == 1


cdef inline bint _direct_wanted(ConvGeometry* g) noexcept nogil:
    if _algorithm_setting == 1 or not _direct_geometry(g):
        return False
    if _algorithm_setting == 2:
        return True
    # one thread each: measured faster than im2col and BLAS on one and on two threads (LeNet-5, the
    # ResNet-style net); with more BLAS threads the threaded gemms are left to run
    return lk_cpu_has_v4() and (_blas_thread_count == NULL or _blas_thread_count() <= 2)


cdef inline bint _winograd_wanted(ConvGeometry* g, Py_ssize_t channels_in, Py_ssize_t channels_out,
                                  Py_ssize_t width_out) noexcept nogil:
    """Whether a float32 product of this geometry, ``channels_in`` to ``channels_out`` channels of
    ``width_out`` columns, runs by Winograd."""
    if not (_algorithm_setting == 0 or _algorithm_setting == 3) or not _direct_wanted(g):
        return False
    if not (g.kh == 3 and g.kw == 3 and channels_out % 16 == 0 and lk_use_v4()):
        return False
    cdef Py_ssize_t tiles = (width_out + 1) // 2
    cdef Py_ssize_t lanes = 4 if tiles <= 4 else 8 if tiles <= 8 else (tiles + 15) // 16 * 16
    return _algorithm_setting == 3 or (channels_in >= 8 and 10 * tiles >= 7 * lanes)


# the most scratch (floats) the Winograd weight gradient may take: its sums over channel pairs and one
# sample's transformed tiles grow with channels x channels and with the map; past this (128 x 128
# channels, or large maps of many channels) the direct kernel, whose scratch is about one sample, runs
cdef Py_ssize_t _WINOGRAD_WGRAD_SCRATCH = 1 << 22


cdef inline bint _winograd_wgrad_fits(ConvGeometry* g) noexcept nogil:
    cdef lk_dc_geom d
    _dc_geom(g, &d)
    return g.kh == 3 and g.kw == 3 and g.C % 4 == 0 and lk_wg_wgrad_scratch_f(&d) <= _WINOGRAD_WGRAD_SCRATCH


cdef inline bint _winograd_wgrad(ConvGeometry* g) noexcept nogil:
    """Whether the float32 weight gradient runs by Winograd (F(3x3, 2x2)): the forward pass's conditions,
    input channels a multiple of 4 and its scratch within bounds; under "auto" also 16 input channels or
    more (32 and 64 channels on 32x32 maps ran 1.45 and 1.3 x faster than the direct kernel alone; 16
    channels on 28x28 as fast alone, and the ResNet-style step 1 to 5% faster with it)."""
    return (_winograd_wanted(g, g.C, g.O, g.Wo) and _winograd_wgrad_fits(g)
            and (_algorithm_setting == 3 or g.C >= 16))


cdef inline bint _winograd_xgrad(ConvGeometry* g) noexcept nogil:
    """Whether the float32 input gradient runs by Winograd (a convolution of ``dy`` padded by at most 2)."""
    return (_winograd_wanted(g, g.O, g.C, g.W) and g.ph <= 2 and g.ph_after <= 2 and g.pw <= 2 and g.pw_after <= 2)


cdef enum:
    _DIRECT_NONE = 0
    _DIRECT_SPATIAL = 1
    _DIRECT_CHANNEL = 2


cdef inline int _direct_kind(ConvGeometry* g, Py_ssize_t channels, Py_ssize_t lanes) noexcept nogil:
    """How the forward pass or weight gradient with ``channels`` output channels runs."""
    if not _direct_wanted(g):
        return _DIRECT_NONE
    if channels % lanes == 0:
        return _DIRECT_CHANNEL
    if channels < lanes or _algorithm_setting == 2:
        return _DIRECT_SPATIAL
    return _DIRECT_NONE


cdef inline bint _direct_xgrad(ConvGeometry* g, Py_ssize_t lanes) noexcept nogil:
    """Whether the input gradient runs as a direct convolution of ``dy`` with the flipped kernel."""
    return (_direct_wanted(g) and g.C % lanes == 0 and g.ph <= g.kh - 1 and g.ph_after <= g.kh - 1
            and g.pw <= g.kw - 1 and g.pw_after <= g.kw - 1)


cdef inline void _dc_geom(ConvGeometry* g, lk_dc_geom* d) noexcept nogil:
    d.C, d.H, d.W, d.O, d.kh, d.kw = g.C, g.H, g.W, g.O, g.kh, g.kw
    d.ph, d.pw, d.Hp, d.Wp, d.Ho, d.Wo = g.ph, g.pw, g.H + g.ph + g.ph_after, g.W + g.pw + g.pw_after, g.Ho, g.Wo


cdef inline void _dc_xgrad_geom(ConvGeometry* g, lk_dc_geom* d) noexcept nogil:
    """The geometry of dx as a convolution of dy (O channels, Ho x Wo) giving C channels of H x W."""
    d.C, d.H, d.W, d.O, d.kh, d.kw = g.O, g.Ho, g.Wo, g.C, g.kh, g.kw
    d.ph, d.pw = g.kh - 1 - g.ph, g.kw - 1 - g.pw
    d.Hp, d.Wp = g.Ho + 2 * (g.kh - 1) - g.ph - g.ph_after, g.Wo + 2 * (g.kw - 1) - g.pw - g.pw_after
    d.Ho, d.Wo = g.H, g.W


cdef Py_ssize_t _direct_scratch_size(ConvGeometry* g) noexcept nogil:
    """The most scratch any direct or Winograd product of this geometry needs now (under the current
    ``conv_algorithm`` and BLAS threads), in either float type; 0 when every product runs by im2col.

    The kernels the products cannot take are not counted: the spatial kernels' sums (a vector per output
    channel and tap) would be 150 MB for a 3x3 layer of 512 channels, which takes the channel kernels.
    """
    cdef lk_dc_geom d, dx
    cdef Py_ssize_t size = 0
    if not _direct_wanted(g):
        return 0
    _dc_geom(g, &d)
    if g.O % 16 and (g.O < 16 or _algorithm_setting == 2):  # (float32; float64's 8 lanes divide the rest)
        size = max(size, lk_dc_scratch_forward_spatial_f(&d), lk_dc_scratch_wgrad_spatial_f(&d))
    if g.O % 8 and (g.O < 8 or _algorithm_setting == 2):
        size = max(size, lk_dc_scratch_forward_spatial_d(&d), lk_dc_scratch_wgrad_spatial_d(&d))
    size = max(size, lk_dc_scratch_forward_channel_f(&d), lk_dc_scratch_forward_channel_d(&d))
    size = max(size, lk_dc_scratch_wgrad_channel_f(&d), lk_dc_scratch_wgrad_channel_d(&d))
    size = max(size, lk_dc_scratch_xgrad_wide_f(&d), lk_dc_scratch_xgrad_wide_d(&d))
    if g.kh == 3 and g.kw == 3:
        size = max(size, lk_wg_scratch_f(&d))
        if _winograd_wgrad_fits(g):
            size = max(size, lk_wg_wgrad_scratch_f(&d))
    if g.ph <= g.kh - 1 and g.ph_after <= g.kh - 1 and g.pw <= g.kw - 1 and g.pw_after <= g.kw - 1:
        _dc_xgrad_geom(g, &dx)
        size = max(size, lk_dc_scratch_forward_channel_f(&dx), lk_dc_scratch_forward_channel_d(&dx))
        if g.kh == 3 and g.kw == 3:
            size = max(size, lk_wg_scratch_f(&dx))
    return size


cdef inline floating _conv_sum(const floating* a, Py_ssize_t n) noexcept nogil:
    """``a[0] + ... + a[n-1]`` (in 16 interleaved partial sums, ``conv.h``)."""
    if floating is float:
        return lk_sum_f(a, n)
    else:
        return lk_sum_d(a, n)


cdef inline void _im2col(const floating* x, floating* col, Py_ssize_t ld, ConvGeometry* g) noexcept nogil:
    """One sample ``x`` (C, H, W) -> ``col`` (C*kh*kw rows of Ho*Wo, ``ld`` apart); C loops in ``conv.h``."""
    if floating is float:
        lk_im2col_f(x, col, ld, g.C, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.Ho, g.Wo)
    else:
        lk_im2col_d(x, col, ld, g.C, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.Ho, g.Wo)


cdef inline void _col2im(const floating* col, Py_ssize_t ld, floating* dx, ConvGeometry* g) noexcept nogil:
    """``dx`` (C, H, W) = the adjoint of ``_im2col`` applied to ``col`` (sums overlapping patches)."""
    if floating is float:
        lk_col2im_f(col, ld, dx, g.C, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.Ho, g.Wo)
    else:
        lk_col2im_d(col, ld, dx, g.C, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.Ho, g.Wo)


# Samples are taken in chunks: the patches of a chunk's samples side by side
# (``col`` is C*kh*kw x chunk*Ho*Wo), so that each product is one gemm over the
# whole chunk rather than one small gemm per sample. A chunk's ``col`` holds
# about ``_chunk_elements`` numbers (it stays in the cache between im2col and
# the gemm); ``conv_chunk_elements`` sets it (benchmarks and tests). A chunk of
# one sample reads and writes the (n, O, Ho, Wo) arrays in place. Measured on
# LeNet-5's layers (OpenBLAS, AVX-512, one thread), one sample a chunk was the
# fastest: larger chunks make larger gemms but the copies and cache misses
# cost more than they gain.
cdef Py_ssize_t _chunk_elements = 1 << 14


def conv_chunk_elements(elements=None):
    """Set the size of a chunk's patch matrix (in numbers; at least one sample); returns the previous one."""
    global _chunk_elements
    previous = _chunk_elements
    if elements is not None:
        if elements < 1:
            raise ValueError("layerkit._core: conv_chunk_elements expects a positive number")
        _chunk_elements = elements
    return previous


cdef inline Py_ssize_t _chunk(ConvGeometry* g) noexcept nogil:
    """Samples per chunk: as many as fit in ``_chunk_elements``, at least 1, at most n."""
    cdef Py_ssize_t per_sample = g.C * g.kh * g.kw * g.Ho * g.Wo
    cdef Py_ssize_t c = _chunk_elements // per_sample
    if c < 1:
        c = 1
    if c > g.n:
        c = g.n if g.n > 0 else 1
    return c


cdef inline Py_ssize_t _scratch_size(ConvGeometry* g) noexcept nogil:
    """Numbers of scratch a pass needs: a chunk's patches, its outputs (or output gradients) by channel,
    and the weight gradient's transpose."""
    cdef Py_ssize_t rows = _chunk(g) * g.Ho * g.Wo
    return max((g.C * g.kh * g.kw + g.O) * rows + g.O * (g.C // g.groups) * g.kh * g.kw,
               _direct_scratch_size(g))


# A sample's products are long and thin (16 output channels, 3x3 taps of 16 channels: 16 x 144 by
# 144 x 784): as one call OpenBLAS packs the 144 x 784 patches before multiplying, which costs as much as
# the product. Cut into pieces of at most PANEL_MULADDS multiply-adds (``blas.pxi``), each piece runs in
# its small-matrix kernels, which read the operands in place: that layer's forward pass 5.5 -> 3.6 ms and
# its backward pass (the input gradient's product) 8.5 -> 8.0 ms at batch 64 (one thread, AVX-512). As
# for small batches, only while the BLAS runs one thread.
cdef inline bint _conv_in_pieces() noexcept nogil:
    if _pieces_setting == 0:
        return False
    if _pieces_setting == 1:
        return True
    return _blas_thread_count != NULL and _blas_thread_count() == 1


cdef inline void _rm_gemm_columns(char ta, int M, int N, int K, floating* A, int lda, floating* B, int ldb,
                                  floating beta, floating* C, int ldc, bint pieces) noexcept nogil:
    """Row-major ``C = op(A) @ B + beta * C``, in pieces of columns of ``B`` and ``C`` when ``pieces``."""
    cdef int p = _panel(<double>M * K) if pieces else 0, j = 0, w
    if p == 0 or p >= N:
        _rm_gemm[floating](ta, b'N', M, N, K, 1, A, lda, B, ldb, beta, C, ldc)
        return
    while j < N:
        w = p if N - j > p else N - j
        _rm_gemm[floating](ta, b'N', M, w, K, 1, A, lda, B + j, ldb, beta, C + j, ldc)
        j += w


cdef void _conv_forward(const floating* x, const floating* w, const floating* b, floating* y,
                        floating* scratch, ConvGeometry* g) noexcept nogil:
    cdef Py_ssize_t P = g.Ho * g.Wo, CHW = g.C * g.H * g.W, s0, s, grp, o, p, cc, ld
    cdef Py_ssize_t chunk = _chunk(g)
    cdef int Og = <int>(g.O // g.groups), Kg = <int>(g.C // g.groups * g.kh * g.kw)
    cdef floating* col = scratch
    cdef floating* out = scratch + g.C * g.kh * g.kw * chunk * P
    cdef floating* ys
    cdef floating* src
    cdef floating bias
    cdef bint pieces = _conv_in_pieces()
    cdef lk_dc_geom d
    if floating is float:
        if _winograd_wanted(g, g.C, g.O, g.Wo):
            _dc_geom(g, &d)
            lk_wg_forward_f(x, w, b, y, scratch, &d, g.n, 0)
            return
    cdef int kind = _direct_kind(g, g.O, 16 if floating is float else 8)
    if kind != _DIRECT_NONE:
        _dc_geom(g, &d)
        if floating is float:
            if kind == _DIRECT_CHANNEL:
                lk_dc_forward_channel_f(x, w, b, y, scratch, &d, g.n)
            else:
                lk_dc_forward_spatial_f(x, w, b, y, scratch, &d, g.n)
        else:
            if kind == _DIRECT_CHANNEL:
                lk_dc_forward_channel_d(x, w, b, y, scratch, &d, g.n)
            else:
                lk_dc_forward_spatial_d(x, w, b, y, scratch, &d, g.n)
        return
    s0 = 0
    while s0 < g.n:
        cc = chunk if g.n - s0 > chunk else g.n - s0
        ld = cc * P
        for s in range(cc):
            _im2col[floating](x + (s0 + s) * CHW, col + s * P, ld, g)
        if cc == 1:
            # one sample: its (O, P) output is the product's layout, written in place over the bias
            ys = y + s0 * g.O * P
            for o in range(g.O):
                bias = b[o] if b != NULL else 0
                for p in range(P):
                    ys[o * P + p] = bias
            for grp in range(g.groups):
                _rm_gemm_columns[floating](b'N', Og, <int>ld, Kg, <floating*>w + grp * Og * Kg, Kg,
                                           col + grp * Kg * ld, <int>ld, 1, ys + grp * Og * ld, <int>ld, pieces)
            s0 += cc
            continue
        # out_g (Og x cc*P) = W_g (Og x Kg) @ col_g (Kg x cc*P)
        for grp in range(g.groups):
            _rm_gemm_columns[floating](b'N', Og, <int>ld, Kg, <floating*>w + grp * Og * Kg, Kg,
                                       col + grp * Kg * ld, <int>ld, 0, out + grp * Og * ld, <int>ld, pieces)
        # to (n, O, P), adding the bias
        for s in range(cc):
            for o in range(g.O):
                ys = y + ((s0 + s) * g.O + o) * P
                src = out + o * ld + s * P
                bias = b[o] if b != NULL else 0
                for p in range(P):
                    ys[p] = src[p] + bias
        s0 += cc


cdef void _conv_backward(const floating* x, const floating* w, const floating* dy, floating* dw,
                         floating* db, floating* dx, floating* scratch, ConvGeometry* g) noexcept nogil:
    cdef Py_ssize_t P = g.Ho * g.Wo, CHW = g.C * g.H * g.W, s0, s, grp, o, p, i, k, cc, ld
    cdef Py_ssize_t chunk = _chunk(g)
    cdef int Og = <int>(g.O // g.groups), Kg = <int>(g.C // g.groups * g.kh * g.kw)
    cdef floating* col = scratch
    cdef floating* dyc_buffer = scratch + g.C * g.kh * g.kw * chunk * P
    cdef floating* dyc
    cdef floating* dwt = dyc_buffer + g.O * chunk * P
    # the weight gradient as dW_g.T (Kg x Og) when Kg > Og: BLAS runs the long-and-thin product
    # with the long side as the rows of its result 1.5-2x faster (OpenBLAS, LeNet's layers)
    cdef bint transposed = Kg > Og
    cdef floating* acc = dwt if transposed else dw
    cdef const floating* dys
    cdef bint pieces = _conv_in_pieces()
    if db != NULL:
        for o in range(g.O):
            db[o] = 0
        for s in range(g.n):
            dys = dy + s * g.O * P
            for o in range(g.O):
                db[o] += _conv_sum[floating](dys + o * P, P)
    cdef lk_dc_geom d
    cdef Py_ssize_t lanes = 16 if floating is float else 8, lq
    cdef floating* dyq
    cdef floating* dcolq
    cdef int kind = _direct_kind(g, g.O, lanes)
    if floating is float:
        if dx != NULL and _winograd_xgrad(g):
            _dc_xgrad_geom(g, &d)
            lk_wg_forward_f(dy, w, NULL, dx, scratch, &d, g.n, 1)
            dx = NULL
    if dx != NULL and _direct_xgrad(g, lanes):
        _dc_xgrad_geom(g, &d)
        if floating is float:
            lk_dc_xgrad_channel_f(dy, w, dx, scratch, &d, g.n)
        else:
            lk_dc_xgrad_channel_d(dy, w, dx, scratch, &d, g.n)
        dx = NULL
    if kind != _DIRECT_NONE:
        _dc_geom(g, &d)
        if floating is float:
            if _winograd_wgrad(g):  # (only where the direct kernels run otherwise: O % 16 == 0)
                lk_wg_wgrad_f(x, dy, dw, scratch, &d, g.n)
            elif kind == _DIRECT_CHANNEL:
                lk_dc_wgrad_channel_f(x, dy, dw, scratch, &d, g.n)
            else:
                lk_dc_wgrad_spatial_f(x, dy, dw, scratch, &d, g.n)
        else:
            if kind == _DIRECT_CHANNEL:
                lk_dc_wgrad_channel_d(x, dy, dw, scratch, &d, g.n)
            else:
                lk_dc_wgrad_spatial_d(x, dy, dw, scratch, &d, g.n)
        if dx != NULL:  # (groups == 1 here) dcolq (K x Ho*Wp) = W.T (K x O) @ dyq (O x Ho*Wp) in the padded width
            lq = g.Ho * d.Wp
            dyq = scratch
            dcolq = scratch + g.O * lq
            memset(dyq, 0, g.O * lq * sizeof(floating))
            for s in range(g.n):
                if floating is float:
                    lk_dc_spread_f(dy + s * g.O * P, dyq, &d)
                else:
                    lk_dc_spread_d(dy + s * g.O * P, dyq, &d)
                _rm_gemm_columns[floating](b'T', Kg, <int>lq, Og, <floating*>w, Kg, dyq, <int>lq, 0, dcolq,
                                           <int>lq, pieces)
                if floating is float:
                    lk_dc_col2im_wide_f(dcolq, dcolq + Kg * lq, dx + s * CHW, &d)
                else:
                    lk_dc_col2im_wide_d(dcolq, dcolq + Kg * lq, dx + s * CHW, &d)
        return
    for i in range(g.O * Kg):
        acc[i] = 0
    s0 = 0
    while s0 < g.n:
        cc = chunk if g.n - s0 > chunk else g.n - s0
        ld = cc * P
        if cc == 1:  # one sample: its (O, P) gradient is already the layout the products read
            dyc = <floating*>dy + s0 * g.O * P
        else:
            dyc = dyc_buffer
        for s in range(cc):
            _im2col[floating](x + (s0 + s) * CHW, col + s * P, ld, g)
            if cc > 1:
                for o in range(g.O):
                    memcpy(dyc + o * ld + s * P, dy + ((s0 + s) * g.O + o) * P, P * sizeof(floating))
        for grp in range(g.groups):
            # (the weight gradient stays one call: cut into slabs of the reduction it was no faster)
            if transposed:
                # dW_g.T (Kg x Og) += col_g (Kg x cc*P) @ dy_g.T (cc*P x Og)
                _rm_gemm[floating](b'N', b'T', Kg, Og, <int>ld, 1, col + grp * Kg * ld, <int>ld,
                                   dyc + grp * Og * ld, <int>ld, 1, acc + grp * Og * Kg, Og)
            else:
                # dW_g (Og x Kg) += dy_g (Og x cc*P) @ col_g.T (cc*P x Kg)
                _rm_gemm[floating](b'N', b'T', Og, Kg, <int>ld, 1, dyc + grp * Og * ld, <int>ld,
                                   col + grp * Kg * ld, <int>ld, 1, acc + grp * Og * Kg, Kg)
            if dx != NULL:
                # dcol_g (Kg x cc*P) = W_g.T (Kg x Og) @ dy_g (Og x cc*P), into col (read above)
                _rm_gemm_columns[floating](b'T', Kg, <int>ld, Og, <floating*>w + grp * Og * Kg, Kg,
                                           dyc + grp * Og * ld, <int>ld, 0, col + grp * Kg * ld, <int>ld, pieces)
        if dx != NULL:
            for s in range(cc):
                _col2im[floating](col + s * P, ld, dx + (s0 + s) * CHW, g)
        s0 += cc
    if transposed:
        for grp in range(g.groups):
            for o in range(Og):
                for k in range(Kg):
                    dw[(grp * Og + o) * Kg + k] = dwt[grp * Og * Kg + k * Og + o]


def conv_col_size(tuple shape):
    """Elements of the scratch array that ``conv_forward``/``conv_backward`` need for this geometry."""
    cdef ConvGeometry g
    _geometry(shape, &g)
    return _scratch_size(&g)


def conv_forward(tuple shape, cnp.ndarray x, cnp.ndarray W, b, cnp.ndarray out, cnp.ndarray col):
    """``out[...]`` = the convolution of ``x`` with ``W`` plus ``b`` (``None``: no bias).

    Parameters
    ----------
    shape : tuple of 16 ints
        ``(n, C, H, W, O, kh, kw, sh, sw, ph, pw, ph_after, pw_after, dh, dw, groups)``:
        padding before and after each axis.
    x : ndarray, (n, C, H, W), C-contiguous
    W : ndarray, (O, C // groups, kh, kw), C-contiguous
    b : ndarray of shape (O,), or None
    out : ndarray, (n, O, Ho, Wo), C-contiguous; overwritten
    col : ndarray of ``conv_col_size(shape)`` elements; scratch (overwritten)
    """
    cdef ConvGeometry g
    _geometry(shape, &g)
    cdef int t = _float_type(x)
    _check_block(x, t, g.n * g.C * g.H * g.W, False)
    _check_block(W, t, g.O * (g.C // g.groups) * g.kh * g.kw, False)
    _check_block(out, t, g.n * g.O * g.Ho * g.Wo, True)
    _check_block(col, t, _scratch_size(&g), True)
    cdef bint has_bias = b is not None
    if has_bias:
        _check_vector(<cnp.ndarray?>b, t, <int>g.O, False)
    cdef void* pb = cnp.PyArray_DATA(<cnp.ndarray>b) if has_bias else NULL
    if not _blas_probed:
        _probe_blas_threads()
    if t == cnp.NPY_FLOAT64:
        with nogil:
            _conv_forward[double](<double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(W), <double*>pb,
                                  <double*>cnp.PyArray_DATA(out), <double*>cnp.PyArray_DATA(col), &g)
    else:
        with nogil:
            _conv_forward[float](<float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(W), <float*>pb,
                                 <float*>cnp.PyArray_DATA(out), <float*>cnp.PyArray_DATA(col), &g)
    return out


def conv_backward(tuple shape, cnp.ndarray x, cnp.ndarray W, cnp.ndarray dy, cnp.ndarray dW, db, dx,
                  cnp.ndarray col):
    """Gradients of ``conv_forward``: ``dW[...]``, ``db[...]`` (unless ``None``) and ``dx[...]`` (unless ``None``).

    Arrays as in ``conv_forward``; ``dy`` is shaped like its ``out``, ``dW``
    like ``W``, ``db`` (O,), ``dx`` like ``x``; all C-contiguous.
    """
    cdef ConvGeometry g
    _geometry(shape, &g)
    cdef int t = _float_type(x)
    _check_block(x, t, g.n * g.C * g.H * g.W, False)
    _check_block(W, t, g.O * (g.C // g.groups) * g.kh * g.kw, False)
    _check_block(dy, t, g.n * g.O * g.Ho * g.Wo, False)
    _check_block(dW, t, g.O * (g.C // g.groups) * g.kh * g.kw, True)
    _check_block(col, t, _scratch_size(&g), True)
    cdef bint has_bias = db is not None, want_dx = dx is not None
    if has_bias:
        _check_vector(<cnp.ndarray?>db, t, <int>g.O, True)
    if want_dx:
        _check_block(<cnp.ndarray?>dx, t, g.n * g.C * g.H * g.W, True)
    cdef void* pdb = cnp.PyArray_DATA(<cnp.ndarray>db) if has_bias else NULL
    cdef void* pdx = cnp.PyArray_DATA(<cnp.ndarray>dx) if want_dx else NULL
    if not _blas_probed:
        _probe_blas_threads()
    if t == cnp.NPY_FLOAT64:
        with nogil:
            _conv_backward[double](<double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(W),
                                   <double*>cnp.PyArray_DATA(dy), <double*>cnp.PyArray_DATA(dW),
                                   <double*>pdb, <double*>pdx, <double*>cnp.PyArray_DATA(col), &g)
    else:
        with nogil:
            _conv_backward[float](<float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(W),
                                  <float*>cnp.PyArray_DATA(dy), <float*>cnp.PyArray_DATA(dW),
                                  <float*>pdb, <float*>pdx, <float*>cnp.PyArray_DATA(col), &g)
    return dx
