// Work splitting shared by gnntrack's CPU kernels (edge_mlp.cc, graph_ops.cc).
#ifndef GNNTRACK_CPU_KERNELS_PARALLEL_H_
#define GNNTRACK_CPU_KERNELS_PARALLEL_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "xla/ffi/api/ffi.h"

namespace gnntrack {

// Runs work(i) for i in [0, n) on the calling thread plus up to num_threads - 1 tasks on XLA's
// intra-op pool, and returns when all are done. The caller takes work items itself, so this
// cannot deadlock when it runs on a pool thread; a task that starts late finds nothing to do.
template <typename F>
void ParallelFor(xla::ffi::ThreadPool& pool, int64_t n, F work) {
  struct State {
    std::atomic<int64_t> next{0}, done{0};
  };
  auto state = std::make_shared<State>();
  auto shared_work = std::make_shared<F>(std::move(work));
  auto drain = [state, shared_work, n] {
    for (int64_t i; (i = state->next.fetch_add(1)) < n;) {
      (*shared_work)(i);
      state->done.fetch_add(1, std::memory_order_release);
    }
  };
  const int64_t helpers = std::min<int64_t>(pool.num_threads() - 1, n - 1);
  for (int64_t i = 0; i < helpers; ++i) {
    auto task = drain;
    pool.Schedule(std::move(task));
  }
  drain();
  while (state->done.load(std::memory_order_acquire) < n) std::this_thread::yield();
}

}  // namespace gnntrack

#endif  // GNNTRACK_CPU_KERNELS_PARALLEL_H_
