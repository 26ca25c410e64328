// Fused forward passes of tanh + LayerNorm MLPs on x86-64 CPUs (AVX2 + FMA),
// called from JAX through XLA's FFI (see gnntrack/nn/cpu_kernels/__init__.py).
//
// gnntrack_edge_mlp -- the segment classifier's edge network. For each edge e, keeping the rows
// of a 24-edge tile in L1/L2 cache and registers:
//   h   = tanh(LN(ps[senders[e]] + pr[receivers[e]] (+ extra[e]) + b_0) * g_0 + c_0)   (first layer, projected per node)
//   h   = tanh(LN(h @ W_l + b_l) * g_l + c_l)                               for l = 1 .. L-1
//   out = h . w_out + b_out                                                 (logit, no activation)
//   Inputs:  ps [Ns, H], pr [Nr, H] float32; senders, receivers int32 [E];
//            vecs [L, 3, H] float32 = (bias, LayerNorm scale, LayerNorm offset) per hidden layer;
//            mats [L-1, H, H] float32; w_out [H]; b_out [1]; extra [E, H] float32 (a per-edge
//            term added to the first layer, e.g. projected edge features) or [0, H].
//   Output: logits float32 [E].
//   Out-of-range indices are an error (InvalidArgument).
// gnntrack_row_mlp -- the same layers on given rows x [R, H] (h = x + b_0 first), returning the
//   last activations [R, H]: the node network after its first matmul.
//
// XLA runs these networks as separate gather / matmul / LayerNorm / tanh passes over 2048-row
// blocks; fusing them saves the passes over memory between the steps. H must be one of the
// widths instantiated in RunRowsAnyWidth. Each row's result does not depend on how the rows are
// split over threads, so results are deterministic.

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include <thread>

#include "parallel.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr float kLayerNormEps = 1e-6f;  // flax.linen.LayerNorm's default
constexpr int kMicroRows = 6;           // rows per register tile of the matmul (6 x 16 floats)
constexpr int kTileRows = 24;           // rows that move through the layers together
constexpr int64_t kChunkRows = 42 * kTileRows;  // rows per unit of work handed to a thread

// tanh on 8 lanes: the rational approximation XLA and Eigen use for float32 (odd degree-13
// numerator, even degree-6 denominator, input clamped to +-7.9053), with the division done as a
// reciprocal estimate plus one Newton step (|error| ~1e-7).
inline __m256 Tanh8(__m256 x) {
  const __m256 limit = _mm256_set1_ps(7.90531110763549805f);
  x = _mm256_max_ps(_mm256_min_ps(x, limit), _mm256_sub_ps(_mm256_setzero_ps(), limit));
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(-2.76076847742355e-16f);
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.00018790482477e-13f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-8.60467152213735e-11f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(5.12229709037114e-08f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(1.48572235717979e-05f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(6.37261928875436e-04f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(4.89352455891786e-03f));
  p = _mm256_mul_ps(p, x);
  __m256 q = _mm256_set1_ps(1.19825839466702e-06f);
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(1.18534705686654e-04f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(2.26843463243900e-03f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(4.89352518554385e-03f));
  __m256 r = _mm256_rcp_ps(q);
  r = _mm256_mul_ps(r, _mm256_fnmadd_ps(q, r, _mm256_set1_ps(2.0f)));
  return _mm256_mul_ps(p, r);
}

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// out[r] = tanh(LN(in[r]) * scale + offset) for every row r of a tile: in, out [kTileRows, H].
// One-pass statistics, var = E[h^2] - E[h]^2 clipped at 0, as flax's LayerNorm
// (use_fast_variance) and gnntrack.nn.layers.norm_act. With xhat_out [kTileRows, H] / rstd_out
// [kTileRows], also stores the normalised rows and 1/sigma (for the backward pass).
// The statistics of all rows come first, then 1/sigma for 8 rows per vector sqrt + divide, then
// the normalise + tanh pass: no row waits on its own reduction -> sqrt -> divide chain (forward
// ~13 % faster than row by row).
template <int H>
inline void NormTanhTile(const float* in, float* out, const float* scale, const float* offset,
                         float* xhat_out = nullptr, float* rstd_out = nullptr) {
  static_assert(kTileRows % 8 == 0, "rows are grouped by 8 for the vector sqrt");
  constexpr int V = H / 8;
  alignas(32) float mean[kTileRows], rstd[kTileRows];
  for (int r = 0; r < kTileRows; ++r) {
    const float* row = in + r * H;
    __m256 sum = _mm256_setzero_ps(), sum_sq = _mm256_setzero_ps();
    for (int j = 0; j < V; ++j) {
      const __m256 h = _mm256_load_ps(row + 8 * j);
      sum = _mm256_add_ps(sum, h);
      sum_sq = _mm256_fmadd_ps(h, h, sum_sq);
    }
    mean[r] = HorizontalSum(sum) / H;
    rstd[r] = HorizontalSum(sum_sq) / H;  // E[h^2] for now
  }
  for (int r = 0; r < kTileRows; r += 8) {
    const __m256 m = _mm256_load_ps(mean + r);
    const __m256 var = _mm256_max_ps(_mm256_sub_ps(_mm256_load_ps(rstd + r), _mm256_mul_ps(m, m)),
                                     _mm256_setzero_ps());
    _mm256_store_ps(rstd + r, _mm256_div_ps(_mm256_set1_ps(1.0f),
                                            _mm256_sqrt_ps(_mm256_add_ps(var, _mm256_set1_ps(kLayerNormEps)))));
  }
  for (int r = 0; r < kTileRows; ++r) {
    if (rstd_out != nullptr) rstd_out[r] = rstd[r];
    const __m256 rs = _mm256_set1_ps(rstd[r]), shift = _mm256_set1_ps(-mean[r] * rstd[r]);
    for (int j = 0; j < V; ++j) {
      const __m256 xhat = _mm256_fmadd_ps(_mm256_load_ps(in + r * H + 8 * j), rs, shift);
      if (xhat_out != nullptr) _mm256_store_ps(xhat_out + r * H + 8 * j, xhat);
      const __m256 z = _mm256_fmadd_ps(xhat, _mm256_loadu_ps(scale + 8 * j), _mm256_loadu_ps(offset + 8 * j));
      _mm256_store_ps(out + r * H + 8 * j, Tanh8(z));
    }
  }
}

// c[kTileRows, H] = a[kTileRows, H] @ w[H, H] + bias[H], in 6 x 16 register tiles.
template <int H>
inline void TileMatmul(const float* a, const float* w, const float* bias, float* c) {
  for (int r0 = 0; r0 < kTileRows; r0 += kMicroRows) {
    for (int c0 = 0; c0 < H; c0 += 16) {
      const __m256 b0 = _mm256_loadu_ps(bias + c0), b1 = _mm256_loadu_ps(bias + c0 + 8);
      __m256 acc[kMicroRows][2];
      for (int r = 0; r < kMicroRows; ++r) acc[r][0] = b0, acc[r][1] = b1;
      for (int k = 0; k < H; ++k) {
        const __m256 w0 = _mm256_loadu_ps(w + k * H + c0), w1 = _mm256_loadu_ps(w + k * H + c0 + 8);
        for (int r = 0; r < kMicroRows; ++r) {
          const __m256 ark = _mm256_broadcast_ss(a + (r0 + r) * H + k);
          acc[r][0] = _mm256_fmadd_ps(ark, w0, acc[r][0]);
          acc[r][1] = _mm256_fmadd_ps(ark, w1, acc[r][1]);
        }
      }
      for (int r = 0; r < kMicroRows; ++r) {
        _mm256_store_ps(c + (r0 + r) * H + c0, acc[r][0]);
        _mm256_store_ps(c + (r0 + r) * H + c0 + 8, acc[r][1]);
      }
    }
  }
}

// One MLP over rows: the input of row e is either gathered (ps[senders[e]] + pr[receivers[e]])
// or given (rows_in[e]); the output is either a logit (w_out set) or the last activations.
struct MlpArgs {
  const float* ps = nullptr;
  const float* pr = nullptr;
  const int32_t* senders = nullptr;
  const int32_t* receivers = nullptr;
  int64_t n_sender_rows = 0, n_receiver_rows = 0;
  const float* rows_in = nullptr;  // [R, H]; when set, used instead of the gather
  const float* extra = nullptr;    // [E, H] or null: a per-edge term added to the gathered rows
  const float* vecs = nullptr;
  const float* mats = nullptr;
  const float* mats_t = nullptr;  // backward only: each W_l transposed, [L-1, H, H]
  int n_layers = 0;
  const float* w_out = nullptr;  // [H]; when null, out gets the activations [R, H]
  float b_out = 0.0f;
  float* out = nullptr;
};

// pre[r] = first-layer pre-activation of row e0 + r (+ vecs[0, 0]) for r < n, zeros for the
// padding rows of a short last tile (finite, unused). bad[r]: the row's index is out of range.
template <int H>
bool LoadTile(const MlpArgs& a, int64_t e0, int n, int64_t hi, float* pre, bool* bad) {
  bool ok = true;
  for (int r = 0; r < kTileRows; ++r) {
    float* row = pre + r * H;
    const int64_t e = e0 + r;
    bad[r] = false;
    if (r >= n) {
      std::fill(row, row + H, 0.0f);
    } else if (a.rows_in != nullptr) {
      const float* x = a.rows_in + e * H;
      for (int j = 0; j < H; j += 8)
        _mm256_store_ps(row + j, _mm256_add_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(a.vecs + j)));
    } else {
      const int64_t e_next = e + kTileRows;
      if (e_next < hi) {  // senders are in random order: fetch the next tile's rows early
        const int64_t s = a.senders[e_next];
        if (s >= 0 && s < a.n_sender_rows) {
          const char* p = reinterpret_cast<const char*>(a.ps + s * H);
          for (int j = 0; j < H * 4; j += 64) _mm_prefetch(p + j, _MM_HINT_T0);
        }
      }
      const int64_t s = a.senders[e], d = a.receivers[e];
      bad[r] = s < 0 || s >= a.n_sender_rows || d < 0 || d >= a.n_receiver_rows;
      if (bad[r]) {
        ok = false;
        std::fill(row, row + H, 0.0f);
      } else {
        const float* x = a.ps + s * H;
        const float* y = a.pr + d * H;
        for (int j = 0; j < H; j += 8)
          _mm256_store_ps(row + j, _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(y + j)),
                                                 _mm256_loadu_ps(a.vecs + j)));
        if (a.extra != nullptr)
          for (int j = 0; j < H; j += 8)
            _mm256_store_ps(row + j, _mm256_add_ps(_mm256_load_ps(row + j), _mm256_loadu_ps(a.extra + e * H + j)));
      }
    }
  }
  return ok;
}

// Rows [lo, hi). Returns false (and writes NaN for that row) on an out-of-range index.
template <int H>
bool MlpRows(const MlpArgs& a, int64_t lo, int64_t hi) {
  alignas(32) float act[kTileRows * H];  // activations entering a layer
  alignas(32) float pre[kTileRows * H];  // pre-activations leaving its matmul
  bool ok = true;
  for (int64_t e0 = lo; e0 < hi; e0 += kTileRows) {
    const int n = static_cast<int>(std::min<int64_t>(kTileRows, hi - e0));
    bool bad[kTileRows];
    ok = LoadTile<H>(a, e0, n, hi, pre, bad) && ok;
    NormTanhTile<H>(pre, act, a.vecs + H, a.vecs + 2 * H);
    for (int l = 1; l < a.n_layers; ++l) {
      const float* v = a.vecs + static_cast<int64_t>(l) * 3 * H;
      TileMatmul<H>(act, a.mats + static_cast<int64_t>(l - 1) * H * H, v, pre);
      NormTanhTile<H>(pre, act, v + H, v + 2 * H);
    }
    for (int r = 0; r < n; ++r) {
      if (a.w_out == nullptr) {
        std::copy(act + r * H, act + (r + 1) * H, a.out + (e0 + r) * H);
        continue;
      }
      __m256 s = _mm256_setzero_ps();
      for (int j = 0; j < H; j += 8) s = _mm256_fmadd_ps(_mm256_load_ps(act + r * H + j), _mm256_loadu_ps(a.w_out + j), s);
      a.out[e0 + r] = bad[r] ? NAN : HorizontalSum(s) + a.b_out;
    }
  }
  return ok;
}

// dw[H, H] += y[kTileRows, H]^T @ dh[kTileRows, H], in 4 x 16 register tiles.
template <int H>
inline void TileAccumulateAtB(const float* y, const float* dh, float* dw) {
  for (int k0 = 0; k0 < H; k0 += 4) {
    for (int c0 = 0; c0 < H; c0 += 16) {
      __m256 acc[4][2];
      for (int i = 0; i < 4; ++i) {
        acc[i][0] = _mm256_loadu_ps(dw + (k0 + i) * H + c0);
        acc[i][1] = _mm256_loadu_ps(dw + (k0 + i) * H + c0 + 8);
      }
      for (int r = 0; r < kTileRows; ++r) {
        const __m256 d0 = _mm256_load_ps(dh + r * H + c0), d1 = _mm256_load_ps(dh + r * H + c0 + 8);
        for (int i = 0; i < 4; ++i) {
          const __m256 yk = _mm256_broadcast_ss(y + r * H + k0 + i);
          acc[i][0] = _mm256_fmadd_ps(yk, d0, acc[i][0]);
          acc[i][1] = _mm256_fmadd_ps(yk, d1, acc[i][1]);
        }
      }
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(dw + (k0 + i) * H + c0, acc[i][0]);
        _mm256_storeu_ps(dw + (k0 + i) * H + c0 + 8, acc[i][1]);
      }
    }
  }
}

// Backward pass over rows [lo, hi): recomputes the forward pass tile by tile (keeping x-hat,
// 1/sigma and the tanh output of every layer), then back-propagates the cotangent: g_logits [E]
// (edge network) or g_rows [R, H] (row MLP). Writes d_in [R, H] (the gradient of each row's
// first-layer pre-activation) and adds the parameter gradients into dpar (this chunk's partial
// sums, layout: d vecs [L, 3, H], d mats [L-1, H, H], d w_out [H], d b_out [1]).
template <int H>
bool MlpGradRows(const MlpArgs& a, const float* g_logits, const float* g_rows, float* d_in, float* dpar,
                 int64_t lo, int64_t hi) {
  const int L = a.n_layers;
  std::vector<float> saved(static_cast<size_t>(L) * kTileRows * (2 * H + 1) + 16);
  float* base = saved.data() + ((32 - reinterpret_cast<uintptr_t>(saved.data()) % 32) % 32) / sizeof(float);
  float* xhat = base;                                  // [L, T, H]
  float* ys = xhat + static_cast<size_t>(L) * kTileRows * H;  // [L, T, H]
  float* rstd = ys + static_cast<size_t>(L) * kTileRows * H;  // [L, T]
  alignas(32) float pre[kTileRows * H];
  alignas(32) float dy[kTileRows * H];
  alignas(32) float dh[kTileRows * H];
  const __m256 zero = _mm256_setzero_ps();
  float* d_vecs = dpar;
  float* d_mats = dpar + static_cast<int64_t>(L) * 3 * H;
  float* d_wout = d_mats + static_cast<int64_t>(L - 1) * H * H;
  float* d_bout = d_wout + H;
  const float* zero_bias = nullptr;
  alignas(32) static const float kZeros[128] = {};
  zero_bias = kZeros;
  bool ok = true;
  for (int64_t e0 = lo; e0 < hi; e0 += kTileRows) {
    const int n = static_cast<int>(std::min<int64_t>(kTileRows, hi - e0));
    bool bad[kTileRows];
    ok = LoadTile<H>(a, e0, n, hi, pre, bad) && ok;
    // Forward, saving what the backward pass needs.
    for (int l = 0; l < L; ++l) {
      const float* v = a.vecs + static_cast<int64_t>(l) * 3 * H;
      if (l > 0) TileMatmul<H>(ys + (l - 1) * kTileRows * H, a.mats + static_cast<int64_t>(l - 1) * H * H, v, pre);
      NormTanhTile<H>(pre, ys + l * kTileRows * H, v + H, v + 2 * H, xhat + l * kTileRows * H,
                      rstd + l * kTileRows);
    }
    // Cotangent of the last activations (zero for padding rows and bad indices).
    const float* y_last = ys + (L - 1) * kTileRows * H;
    for (int r = 0; r < kTileRows; ++r) {
      const bool live = r < n && !bad[r];
      if (g_rows != nullptr) {
        for (int j = 0; j < H; j += 8)
          _mm256_store_ps(dy + r * H + j, live ? _mm256_loadu_ps(g_rows + (e0 + r) * H + j) : zero);
        continue;
      }
      const float gr = live ? g_logits[e0 + r] : 0.0f;
      const __m256 gv = _mm256_set1_ps(gr);
      for (int j = 0; j < H; j += 8) {
        _mm256_store_ps(dy + r * H + j, _mm256_mul_ps(gv, _mm256_loadu_ps(a.w_out + j)));
        _mm256_storeu_ps(d_wout + j, _mm256_fmadd_ps(gv, _mm256_load_ps(y_last + r * H + j), _mm256_loadu_ps(d_wout + j)));
      }
      d_bout[0] += gr;
    }
    for (int l = L - 1; l >= 0; --l) {
      const float* scale = a.vecs + static_cast<int64_t>(l) * 3 * H + H;
      float* dv = d_vecs + static_cast<int64_t>(l) * 3 * H;  // d bias, d scale, d offset
      for (int r = 0; r < kTileRows; ++r) {
        const float* xh = xhat + (l * kTileRows + r) * H;
        const float* y = ys + (l * kTileRows + r) * H;
        constexpr int V = H / 8;
        __m256 gg[V], xv[V];
        __m256 s1 = zero, s2 = zero;
        for (int j = 0; j < V; ++j) {
          const __m256 yj = _mm256_load_ps(y + 8 * j);
          const __m256 dz = _mm256_mul_ps(_mm256_load_ps(dy + r * H + 8 * j),
                                          _mm256_fnmadd_ps(yj, yj, _mm256_set1_ps(1.0f)));
          xv[j] = _mm256_load_ps(xh + 8 * j);
          _mm256_storeu_ps(dv + H + 8 * j, _mm256_fmadd_ps(dz, xv[j], _mm256_loadu_ps(dv + H + 8 * j)));
          _mm256_storeu_ps(dv + 2 * H + 8 * j, _mm256_add_ps(dz, _mm256_loadu_ps(dv + 2 * H + 8 * j)));
          gg[j] = _mm256_mul_ps(dz, _mm256_loadu_ps(scale + 8 * j));
          s1 = _mm256_add_ps(s1, gg[j]);
          s2 = _mm256_fmadd_ps(gg[j], xv[j], s2);
        }
        const __m256 m1 = _mm256_set1_ps(HorizontalSum(s1) / H), m2 = _mm256_set1_ps(HorizontalSum(s2) / H);
        const __m256 rs = _mm256_set1_ps(rstd[l * kTileRows + r]);
        for (int j = 0; j < V; ++j) {
          const __m256 d = _mm256_mul_ps(rs, _mm256_sub_ps(_mm256_sub_ps(gg[j], m1), _mm256_mul_ps(xv[j], m2)));
          _mm256_store_ps(dh + r * H + 8 * j, d);
          _mm256_storeu_ps(dv + 8 * j, _mm256_add_ps(d, _mm256_loadu_ps(dv + 8 * j)));
        }
      }
      if (l > 0) {
        TileAccumulateAtB<H>(ys + (l - 1) * kTileRows * H, dh, d_mats + static_cast<int64_t>(l - 1) * H * H);
        TileMatmul<H>(dh, a.mats_t + static_cast<int64_t>(l - 1) * H * H, zero_bias, dy);
      }
    }
    for (int r = 0; r < n; ++r) std::copy(dh + r * H, dh + (r + 1) * H, d_in + (e0 + r) * H);
  }
  return ok;
}

using gnntrack::ParallelFor;

template <int H>
bool RunRows(ffi::ThreadPool& pool, const MlpArgs& a, int64_t n_rows) {
  const int64_t n_chunks = (n_rows + kChunkRows - 1) / kChunkRows;
  std::atomic<bool> ok{true};
  ParallelFor(pool, n_chunks, [&a, &ok, n_rows](int64_t i) {
    if (!MlpRows<H>(a, i * kChunkRows, std::min(n_rows, (i + 1) * kChunkRows))) ok = false;
  });
  return ok;
}

bool RunRowsAnyWidth(ffi::ThreadPool& pool, const MlpArgs& a, int64_t width, int64_t n_rows) {
  switch (width) {
    case 16: return RunRows<16>(pool, a, n_rows);
    case 32: return RunRows<32>(pool, a, n_rows);
    case 64: return RunRows<64>(pool, a, n_rows);
    case 128: return RunRows<128>(pool, a, n_rows);
    default: return false;
  }
}

bool SupportedWidth(int64_t width) { return width == 16 || width == 32 || width == 64 || width == 128; }

// Checks the layer parameters: vecs [L, 3, H], mats [L-1, H, H]. Returns L, or 0 if they mismatch.
int64_t LayerCount(ffi::Buffer<ffi::F32>& vecs, ffi::Buffer<ffi::F32>& mats, int64_t width) {
  if (vecs.dimensions().size() != 3 || vecs.dimensions()[1] != 3 || vecs.dimensions()[2] != width) return 0;
  const int64_t n_layers = vecs.dimensions()[0];
  return n_layers >= 1 && mats.element_count() == (n_layers - 1) * width * width ? n_layers : 0;
}

// The optional per-edge term: empty, or one row of H per edge.
bool ExtraShapeOk(ffi::Buffer<ffi::F32>& extra, int64_t n_edges, int64_t width) {
  return extra.element_count() == 0 || static_cast<int64_t>(extra.element_count()) == n_edges * width;
}

ffi::Error EdgeMlp(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> ps, ffi::Buffer<ffi::F32> pr,
                   ffi::Buffer<ffi::S32> senders, ffi::Buffer<ffi::S32> receivers,
                   ffi::Buffer<ffi::F32> vecs, ffi::Buffer<ffi::F32> mats, ffi::Buffer<ffi::F32> w_out,
                   ffi::Buffer<ffi::F32> b_out, ffi::Buffer<ffi::F32> extra, ffi::ResultBuffer<ffi::F32> out) {
  if (ps.dimensions().size() != 2 || pr.dimensions().size() != 2)
    return ffi::Error::InvalidArgument("gnntrack edge_mlp: bad operand ranks");
  const int64_t width = ps.dimensions()[1];
  if (!SupportedWidth(width))
    return ffi::Error::InvalidArgument("gnntrack edge_mlp: unsupported width " + std::to_string(width));
  const int64_t n_layers = LayerCount(vecs, mats, width);
  if (pr.dimensions()[1] != width || n_layers == 0 || w_out.element_count() != width ||
      b_out.element_count() != 1 || senders.element_count() != receivers.element_count() ||
      out->element_count() != senders.element_count() ||
      !ExtraShapeOk(extra, senders.element_count(), width))
    return ffi::Error::InvalidArgument("gnntrack edge_mlp: operand shapes do not match");
  MlpArgs a;
  a.ps = ps.typed_data(), a.pr = pr.typed_data();
  a.senders = senders.typed_data(), a.receivers = receivers.typed_data();
  a.n_sender_rows = ps.dimensions()[0], a.n_receiver_rows = pr.dimensions()[0];
  a.vecs = vecs.typed_data(), a.mats = mats.typed_data(), a.n_layers = static_cast<int>(n_layers);
  a.w_out = w_out.typed_data(), a.b_out = b_out.typed_data()[0], a.out = out->typed_data();
  a.extra = extra.element_count() ? extra.typed_data() : nullptr;
  if (!RunRowsAnyWidth(pool, a, width, senders.element_count()))
    return ffi::Error::InvalidArgument("gnntrack edge_mlp: a sender or receiver index is out of range");
  return ffi::Error::Success();
}

// out [R, H] = the activations after L x (LayerNorm + tanh [+ dense]) of rows x [R, H] (+ vecs[0, 0]).
ffi::Error RowMlp(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> vecs,
                  ffi::Buffer<ffi::F32> mats, ffi::ResultBuffer<ffi::F32> out) {
  if (x.dimensions().size() != 2) return ffi::Error::InvalidArgument("gnntrack row_mlp: x must be [R, H]");
  const int64_t width = x.dimensions()[1];
  if (!SupportedWidth(width))
    return ffi::Error::InvalidArgument("gnntrack row_mlp: unsupported width " + std::to_string(width));
  const int64_t n_layers = LayerCount(vecs, mats, width);
  if (n_layers == 0 || out->element_count() != x.element_count())
    return ffi::Error::InvalidArgument("gnntrack row_mlp: operand shapes do not match");
  MlpArgs a;
  a.rows_in = x.typed_data();
  a.vecs = vecs.typed_data(), a.mats = mats.typed_data(), a.n_layers = static_cast<int>(n_layers);
  a.out = out->typed_data();
  RunRowsAnyWidth(pool, a, width, x.dimensions()[0]);
  return ffi::Error::Success();
}

// Number of floats in one chunk's partial parameter gradient (see MlpGradRows).
int64_t GradParamCount(int64_t n_layers, int64_t width) {
  return n_layers * 3 * width + (n_layers - 1) * width * width + width + 1;
}

template <int H>
bool RunGrad(ffi::ThreadPool& pool, const MlpArgs& a, const float* g_logits, const float* g_rows,
             float* d_in, float* dpar, int64_t n_rows) {
  const int64_t n_chunks = (n_rows + kChunkRows - 1) / kChunkRows;
  const int64_t n_par = GradParamCount(a.n_layers, H);
  std::atomic<bool> ok{true};
  ParallelFor(pool, n_chunks, [&, n_rows, n_par](int64_t i) {
    float* part = dpar + i * n_par;
    std::fill(part, part + n_par, 0.0f);
    if (!MlpGradRows<H>(a, g_logits, g_rows, d_in, part, i * kChunkRows, std::min(n_rows, (i + 1) * kChunkRows)))
      ok = false;
  });
  return ok;
}

bool RunGradAnyWidth(ffi::ThreadPool& pool, const MlpArgs& a, const float* g_logits, const float* g_rows,
                     float* d_in, float* dpar, int64_t width, int64_t n_rows) {
  switch (width) {
    case 16: return RunGrad<16>(pool, a, g_logits, g_rows, d_in, dpar, n_rows);
    case 32: return RunGrad<32>(pool, a, g_logits, g_rows, d_in, dpar, n_rows);
    case 64: return RunGrad<64>(pool, a, g_logits, g_rows, d_in, dpar, n_rows);
    case 128: return RunGrad<128>(pool, a, g_logits, g_rows, d_in, dpar, n_rows);
    default: return false;
  }
}

std::vector<float> Transposed(const float* mats, int64_t n_mats, int64_t width) {
  std::vector<float> t(static_cast<size_t>(n_mats * width * width));
  for (int64_t m = 0; m < n_mats; ++m)
    for (int64_t i = 0; i < width; ++i)
      for (int64_t j = 0; j < width; ++j) t[(m * width + j) * width + i] = mats[(m * width + i) * width + j];
  return t;
}

bool GradShapesOk(ffi::ResultBuffer<ffi::F32>& d_in, ffi::ResultBuffer<ffi::F32>& dpar, int64_t n_rows,
                  int64_t width, int64_t n_layers) {
  const auto dims = dpar->dimensions();
  return d_in->element_count() == n_rows * width && dims.size() == 2 &&
         dims[0] == (n_rows + kChunkRows - 1) / kChunkRows && dims[1] == GradParamCount(n_layers, width);
}

// Backward of gnntrack_edge_mlp: inputs as the forward pass plus g [E] (cotangent of the logits).
// Outputs: d_in [E, H], the gradient of each edge's first-layer pre-activation (d ps / d pr are
// its segment sums over senders / receivers), and d_params [ceil(E / kChunkRows), P], per-chunk
// partial parameter gradients for the caller to sum (fixed chunks, so deterministic).
ffi::Error EdgeMlpGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> ps, ffi::Buffer<ffi::F32> pr,
                       ffi::Buffer<ffi::S32> senders, ffi::Buffer<ffi::S32> receivers,
                       ffi::Buffer<ffi::F32> vecs, ffi::Buffer<ffi::F32> mats, ffi::Buffer<ffi::F32> w_out,
                       ffi::Buffer<ffi::F32> b_out, ffi::Buffer<ffi::F32> extra, ffi::Buffer<ffi::F32> g,
                       ffi::ResultBuffer<ffi::F32> d_in,
                       ffi::ResultBuffer<ffi::F32> dpar) {
  if (ps.dimensions().size() != 2 || pr.dimensions().size() != 2)
    return ffi::Error::InvalidArgument("gnntrack edge_mlp_grad: bad operand ranks");
  const int64_t width = ps.dimensions()[1], n_edges = senders.element_count();
  const int64_t n_layers = SupportedWidth(width) ? LayerCount(vecs, mats, width) : 0;
  if (n_layers == 0 || pr.dimensions()[1] != width || w_out.element_count() != width ||
      b_out.element_count() != 1 || receivers.element_count() != n_edges || g.element_count() != n_edges ||
      !ExtraShapeOk(extra, n_edges, width) || !GradShapesOk(d_in, dpar, n_edges, width, n_layers))
    return ffi::Error::InvalidArgument("gnntrack edge_mlp_grad: operand shapes do not match");
  const std::vector<float> mats_t = Transposed(mats.typed_data(), n_layers - 1, width);
  MlpArgs a;
  a.ps = ps.typed_data(), a.pr = pr.typed_data();
  a.senders = senders.typed_data(), a.receivers = receivers.typed_data();
  a.n_sender_rows = ps.dimensions()[0], a.n_receiver_rows = pr.dimensions()[0];
  a.vecs = vecs.typed_data(), a.mats = mats.typed_data(), a.mats_t = mats_t.data();
  a.n_layers = static_cast<int>(n_layers), a.w_out = w_out.typed_data(), a.b_out = b_out.typed_data()[0];
  a.extra = extra.element_count() ? extra.typed_data() : nullptr;
  if (!RunGradAnyWidth(pool, a, g.typed_data(), nullptr, d_in->typed_data(), dpar->typed_data(), width, n_edges))
    return ffi::Error::InvalidArgument("gnntrack edge_mlp_grad: a sender or receiver index is out of range");
  return ffi::Error::Success();
}

// Backward of gnntrack_row_mlp: x, vecs, mats and g [R, H] (cotangent of the output) ->
// d_in = dx [R, H] and d_params as for EdgeMlpGrad (its w_out / b_out entries stay zero).
ffi::Error RowMlpGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> vecs,
                      ffi::Buffer<ffi::F32> mats, ffi::Buffer<ffi::F32> g, ffi::ResultBuffer<ffi::F32> d_in,
                      ffi::ResultBuffer<ffi::F32> dpar) {
  if (x.dimensions().size() != 2) return ffi::Error::InvalidArgument("gnntrack row_mlp_grad: x must be [R, H]");
  const int64_t width = x.dimensions()[1], n_rows = x.dimensions()[0];
  const int64_t n_layers = SupportedWidth(width) ? LayerCount(vecs, mats, width) : 0;
  if (n_layers == 0 || g.element_count() != x.element_count() || !GradShapesOk(d_in, dpar, n_rows, width, n_layers))
    return ffi::Error::InvalidArgument("gnntrack row_mlp_grad: operand shapes do not match");
  const std::vector<float> mats_t = Transposed(mats.typed_data(), n_layers - 1, width);
  MlpArgs a;
  a.rows_in = x.typed_data();
  a.vecs = vecs.typed_data(), a.mats = mats.typed_data(), a.mats_t = mats_t.data();
  a.n_layers = static_cast<int>(n_layers);
  RunGradAnyWidth(pool, a, nullptr, g.typed_data(), d_in->typed_data(), dpar->typed_data(), width, n_rows);
  return ffi::Error::Success();
}

}  // namespace

// Operands shared by the edge kernel and its backward pass, and by the row kernel and its own.
#define GNNTRACK_EDGE_OPERANDS                                                              \
  ffi::Ffi::Bind()                                                                          \
      .Ctx<ffi::ThreadPool>()                                                               \
      .Arg<ffi::Buffer<ffi::F32>>() /* ps */                                                \
      .Arg<ffi::Buffer<ffi::F32>>() /* pr */                                                \
      .Arg<ffi::Buffer<ffi::S32>>() /* senders */                                           \
      .Arg<ffi::Buffer<ffi::S32>>() /* receivers */                                         \
      .Arg<ffi::Buffer<ffi::F32>>() /* vecs */                                              \
      .Arg<ffi::Buffer<ffi::F32>>() /* mats */                                              \
      .Arg<ffi::Buffer<ffi::F32>>() /* w_out */                                             \
      .Arg<ffi::Buffer<ffi::F32>>() /* b_out */                                             \
      .Arg<ffi::Buffer<ffi::F32>>() /* extra: [E, H] per-edge term, or [0, H] */
#define GNNTRACK_ROW_OPERANDS                                                               \
  ffi::Ffi::Bind()                                                                          \
      .Ctx<ffi::ThreadPool>()                                                               \
      .Arg<ffi::Buffer<ffi::F32>>() /* x */                                                 \
      .Arg<ffi::Buffer<ffi::F32>>() /* vecs */                                              \
      .Arg<ffi::Buffer<ffi::F32>>() /* mats */

XLA_FFI_DEFINE_HANDLER_SYMBOL(gnntrack_edge_mlp, EdgeMlp,
                              GNNTRACK_EDGE_OPERANDS.Ret<ffi::Buffer<ffi::F32>>() /* logits */);
XLA_FFI_DEFINE_HANDLER_SYMBOL(gnntrack_edge_mlp_grad, EdgeMlpGrad,
                              GNNTRACK_EDGE_OPERANDS
                                  .Arg<ffi::Buffer<ffi::F32>>()   /* g */
                                  .Ret<ffi::Buffer<ffi::F32>>()   /* d_in */
                                  .Ret<ffi::Buffer<ffi::F32>>()); /* d_params */
XLA_FFI_DEFINE_HANDLER_SYMBOL(gnntrack_row_mlp, RowMlp,
                              GNNTRACK_ROW_OPERANDS.Ret<ffi::Buffer<ffi::F32>>() /* out */);
XLA_FFI_DEFINE_HANDLER_SYMBOL(gnntrack_row_mlp_grad, RowMlpGrad,
                              GNNTRACK_ROW_OPERANDS
                                  .Arg<ffi::Buffer<ffi::F32>>()   /* g */
                                  .Ret<ffi::Buffer<ffi::F32>>()   /* d_in */
                                  .Ret<ffi::Buffer<ffi::F32>>()); /* d_params */
