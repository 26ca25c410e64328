// Message-passing primitives on x86-64 CPUs (AVX2 + FMA), called from JAX through XLA's FFI
// (see gnntrack/nn/cpu_kernels/__init__.py):
//
// gnntrack_segment_order -- a stable counting sort of edges by one endpoint.
//   Input: idx int32 [E] in [0, N). Outputs: perm int32 [E] (edge ids, grouped by idx, in edge
//   order within a group) and ptr int32 [N + 1] (group n is perm[ptr[n] : ptr[n + 1]]).
// gnntrack_segment_gather_sum -- out[n] = sum_{j in [ptr[n], ptr[n+1])} coef[j] * table[rows[j]]
//   Inputs: table float32 [T, H]; rows int32 [E] in [0, T); coef float32 [E] (or [0]: all ones);
//   ptr int32 [N + 1]. Output: out float32 [N, H]. With rows = senders[perm] and coef = w[perm]
//   of the order by receivers this is segment_sum(w * table[senders], receivers); with rows =
//   perm and no coef it is segment_sum(table, idx) of per-edge rows.
// gnntrack_row_dots -- out[e] = a[ia[e]] . b[ib[e]]: a float32 [Ta, H], b [Tb, H], ia, ib int32 [E].
//
// Why: XLA:CPU lowers segment sums to a scatter and fuses the per-edge products into it: one
// serial loop over the edges, in the forward pass and again in the gradient. Grouping edges by
// their target node turns the scatter into a gather: every output row is owned by one thread, no
// atomics, and each row is summed in edge order, so results do not depend on the thread count
// (deterministic).

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "parallel.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using gnntrack::ParallelFor;

constexpr int64_t kNodesPerTask = 256;
constexpr int64_t kEdgesPerTask = 4096;
constexpr int kPrefetchAhead = 8;  // rows ahead of the one being summed

inline void PrefetchRow(const float* row, int64_t width) {
  for (int64_t j = 0; j < width; j += 16) _mm_prefetch(reinterpret_cast<const char*>(row + j), _MM_HINT_T0);
}

// out[n] for n in [n0, n1), width H known at compile time (H % 8 == 0): accumulators in registers.
template <int H>
bool GatherSumNodes(const float* table, int64_t n_table, const int32_t* rows, const float* coef,
                    const int32_t* ptr, float* out, int64_t n0, int64_t n1, int64_t n_rows) {
  constexpr int V = H / 8;
  for (int64_t n = n0; n < n1; ++n) {
    __m256 acc[V];
    for (int v = 0; v < V; ++v) acc[v] = _mm256_setzero_ps();
    for (int64_t j = ptr[n]; j < ptr[n + 1]; ++j) {
      if (j + kPrefetchAhead < n_rows) {
        const int32_t ahead = rows[j + kPrefetchAhead];
        if (ahead >= 0 && ahead < n_table) PrefetchRow(table + int64_t{ahead} * H, H);
      }
      const int32_t r = rows[j];
      if (r < 0 || r >= n_table) return false;
      const float* src = table + int64_t{r} * H;
      if (coef != nullptr) {
        const __m256 c = _mm256_set1_ps(coef[j]);
        for (int v = 0; v < V; ++v) acc[v] = _mm256_add_ps(acc[v], _mm256_mul_ps(c, _mm256_loadu_ps(src + 8 * v)));
      } else {
        for (int v = 0; v < V; ++v) acc[v] = _mm256_add_ps(acc[v], _mm256_loadu_ps(src + 8 * v));
      }
    }
    for (int v = 0; v < V; ++v) _mm256_storeu_ps(out + n * H + 8 * v, acc[v]);
  }
  return true;
}

// Any width (the compiler vectorises the inner loops).
bool GatherSumNodesAnyWidth(const float* table, int64_t n_table, int64_t width, const int32_t* rows,
                            const float* coef, const int32_t* ptr, float* out, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    float* dst = out + n * width;
    std::fill(dst, dst + width, 0.0f);
    for (int64_t j = ptr[n]; j < ptr[n + 1]; ++j) {
      const int32_t r = rows[j];
      if (r < 0 || r >= n_table) return false;
      const float* src = table + int64_t{r} * width;
      const float c = coef != nullptr ? coef[j] : 1.0f;
      for (int64_t k = 0; k < width; ++k) dst[k] += c * src[k];
    }
  }
  return true;
}

template <int H>
float RowDot(const float* a, const float* b) {
  __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b));
  for (int v = 1; v < H / 8; ++v) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + 8 * v), _mm256_loadu_ps(b + 8 * v), acc);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float RowDotAnyWidth(const float* a, const float* b, int64_t width) {
  float acc = 0.0f;
  for (int64_t k = 0; k < width; ++k) acc += a[k] * b[k];
  return acc;
}

struct DotArgs {
  const float* a;
  const float* b;
  int64_t n_a, n_b, width;
  const int32_t* ia;
  const int32_t* ib;
  float* out;
};

template <int H>
bool RowDots(const DotArgs& d, int64_t e0, int64_t e1) {
  for (int64_t e = e0; e < e1; ++e) {
    if (e + kPrefetchAhead < e1) {
      const int32_t pa = d.ia[e + kPrefetchAhead], pb = d.ib[e + kPrefetchAhead];
      if (pa >= 0 && pa < d.n_a) PrefetchRow(d.a + int64_t{pa} * d.width, d.width);
      if (pb >= 0 && pb < d.n_b) PrefetchRow(d.b + int64_t{pb} * d.width, d.width);
    }
    const int32_t i = d.ia[e], j = d.ib[e];
    if (i < 0 || i >= d.n_a || j < 0 || j >= d.n_b) return false;
    const float* x = d.a + int64_t{i} * d.width;
    const float* y = d.b + int64_t{j} * d.width;
    d.out[e] = H > 0 ? RowDot<(H > 0 ? H : 8)>(x, y) : RowDotAnyWidth(x, y, d.width);
  }
  return true;
}

// Call<H>::Run(args...) with H = width for the widths kept in registers, H = 0 (any width,
// plain loops) otherwise.
template <template <int> class Call, typename... Args>
bool DispatchWidth(int64_t width, Args&&... args) {
  switch (width) {
    case 8: return Call<8>::Run(args...);
    case 16: return Call<16>::Run(args...);
    case 32: return Call<32>::Run(args...);
    case 64: return Call<64>::Run(args...);
    case 128: return Call<128>::Run(args...);
    default: return Call<0>::Run(args...);
  }
}

struct GatherSumArgs {
  const float* table;
  int64_t n_table, width;
  const int32_t* rows;
  const float* coef;
  const int32_t* ptr;
  int64_t n_rows, n_nodes;
  float* out;
};

template <int H>
struct GatherSumCall {
  static bool Run(ffi::ThreadPool& pool, const GatherSumArgs& g) {
    const int64_t n_tasks = (g.n_nodes + kNodesPerTask - 1) / kNodesPerTask;
    std::atomic<bool> ok{true};
    ParallelFor(pool, n_tasks, [&g, &ok](int64_t t) {
      const int64_t n0 = t * kNodesPerTask, n1 = std::min(g.n_nodes, n0 + kNodesPerTask);
      const bool fine = H > 0 ? GatherSumNodes<(H > 0 ? H : 8)>(g.table, g.n_table, g.rows, g.coef, g.ptr, g.out,
                                                              n0, n1, g.n_rows)
                              : GatherSumNodesAnyWidth(g.table, g.n_table, g.width, g.rows, g.coef, g.ptr,
                                                       g.out, n0, n1);
      if (!fine) ok = false;
    });
    return ok;
  }
};

template <int H>
struct RowDotsCall {
  static bool Run(ffi::ThreadPool& pool, const DotArgs& d, int64_t n_edges) {
    const int64_t n_tasks = (n_edges + kEdgesPerTask - 1) / kEdgesPerTask;
    std::atomic<bool> ok{true};
    ParallelFor(pool, n_tasks, [&d, &ok, n_edges](int64_t t) {
      if (!RowDots<H>(d, t * kEdgesPerTask, std::min(n_edges, (t + 1) * kEdgesPerTask))) ok = false;
    });
    return ok;
  }
};

ffi::Error SegmentOrder(ffi::Buffer<ffi::S32> idx, ffi::ResultBuffer<ffi::S32> perm,
                        ffi::ResultBuffer<ffi::S32> ptr) {
  const int64_t n_edges = idx.element_count(), n_nodes = ptr->element_count() - 1;
  if (n_nodes < 0 || perm->element_count() != n_edges || n_edges > INT32_MAX)
    return ffi::Error::InvalidArgument("gnntrack segment_order: operand shapes do not match");
  const int32_t* key = idx.typed_data();
  int32_t* p = ptr->typed_data();
  std::fill(p, p + n_nodes + 1, 0);
  for (int64_t e = 0; e < n_edges; ++e) {
    if (key[e] < 0 || key[e] >= n_nodes)
      return ffi::Error::InvalidArgument("gnntrack segment_order: index " + std::to_string(key[e]) +
                                         " at position " + std::to_string(e) + " is outside [0, " +
                                         std::to_string(n_nodes) + ")");
    ++p[key[e] + 1];
  }
  for (int64_t n = 0; n < n_nodes; ++n) p[n + 1] += p[n];
  std::vector<int32_t> next(p, p + n_nodes);
  int32_t* out = perm->typed_data();
  for (int64_t e = 0; e < n_edges; ++e) out[next[key[e]]++] = static_cast<int32_t>(e);
  return ffi::Error::Success();
}

ffi::Error SegmentGatherSum(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> table, ffi::Buffer<ffi::S32> rows,
                            ffi::Buffer<ffi::F32> coef, ffi::Buffer<ffi::S32> ptr,
                            ffi::ResultBuffer<ffi::F32> out) {
  if (table.dimensions().size() != 2)
    return ffi::Error::InvalidArgument("gnntrack segment_gather_sum: table must be [T, H]");
  const int64_t width = table.dimensions()[1], n_rows = rows.element_count();
  const int64_t n_nodes = ptr.element_count() - 1;
  if (n_nodes < 0 || out->element_count() != n_nodes * width ||
      (coef.element_count() != 0 && coef.element_count() != n_rows))
    return ffi::Error::InvalidArgument("gnntrack segment_gather_sum: operand shapes do not match");
  const int32_t* p = ptr.typed_data();
  if (n_nodes > 0 && (p[0] != 0 || p[n_nodes] != n_rows))
    return ffi::Error::InvalidArgument("gnntrack segment_gather_sum: ptr must run from 0 to len(rows)");
  for (int64_t n = 0; n < n_nodes; ++n)
    if (p[n + 1] < p[n]) return ffi::Error::InvalidArgument("gnntrack segment_gather_sum: ptr must not decrease");
  if (n_nodes == 0 || width == 0) return ffi::Error::Success();
  const GatherSumArgs g{table.typed_data(), table.dimensions()[0], width, rows.typed_data(),
                        coef.element_count() ? coef.typed_data() : nullptr, p, n_rows, n_nodes,
                        out->typed_data()};
  if (!DispatchWidth<GatherSumCall>(width, pool, g))
    return ffi::Error::InvalidArgument("gnntrack segment_gather_sum: a row index is out of range");
  return ffi::Error::Success();
}

ffi::Error RowDotsFfi(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> a, ffi::Buffer<ffi::S32> ia,
                      ffi::Buffer<ffi::F32> b, ffi::Buffer<ffi::S32> ib, ffi::ResultBuffer<ffi::F32> out) {
  if (a.dimensions().size() != 2 || b.dimensions().size() != 2 || a.dimensions()[1] != b.dimensions()[1])
    return ffi::Error::InvalidArgument("gnntrack row_dots: a and b must be [T, H] of one width H");
  const int64_t n_edges = ia.element_count();
  if (ib.element_count() != n_edges || out->element_count() != n_edges)
    return ffi::Error::InvalidArgument("gnntrack row_dots: operand shapes do not match");
  const DotArgs d{a.typed_data(), b.typed_data(), a.dimensions()[0], b.dimensions()[0], a.dimensions()[1],
                  ia.typed_data(), ib.typed_data(), out->typed_data()};
  if (d.width == 0) {
    std::fill(d.out, d.out + n_edges, 0.0f);
    return ffi::Error::Success();
  }
  if (!DispatchWidth<RowDotsCall>(d.width, pool, d, n_edges))
    return ffi::Error::InvalidArgument("gnntrack row_dots: a row index is out of range");
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(gnntrack_segment_order, SegmentOrder,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::S32>>()   /* idx */
                                  .Ret<ffi::Buffer<ffi::S32>>()   /* perm */
                                  .Ret<ffi::Buffer<ffi::S32>>()); /* ptr */
XLA_FFI_DEFINE_HANDLER_SYMBOL(gnntrack_segment_gather_sum, SegmentGatherSum,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()   /* table */
                                  .Arg<ffi::Buffer<ffi::S32>>()   /* rows */
                                  .Arg<ffi::Buffer<ffi::F32>>()   /* coef */
                                  .Arg<ffi::Buffer<ffi::S32>>()   /* ptr */
                                  .Ret<ffi::Buffer<ffi::F32>>()); /* out */
XLA_FFI_DEFINE_HANDLER_SYMBOL(gnntrack_row_dots, RowDotsFfi,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()   /* a */
                                  .Arg<ffi::Buffer<ffi::S32>>()   /* ia */
                                  .Arg<ffi::Buffer<ffi::F32>>()   /* b */
                                  .Arg<ffi::Buffer<ffi::S32>>()   /* ib */
                                  .Ret<ffi::Buffer<ffi::F32>>()); /* out */
