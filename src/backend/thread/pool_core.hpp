// pool_core.hpp: ThreadPoolCore — a thread pool's workers, their queues, the sleep/wake
// protocol, the pool's life cycle, and the JobHost that serializes callbacks.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "backend/thread/task_queue.hpp"
#include "mproc/detail/insights_recorder.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/pool_options.hpp"

namespace mproc::detail {

class ThreadPoolCore final : public JobHost {
 public:
  explicit ThreadPoolCore(PoolOptions options);
  ~ThreadPoolCore();

  unsigned size() const noexcept { return static_cast<unsigned>(workers_.size()); }
  void check_running() const;
  void enqueue(ThreadTask&& task);
  void close() noexcept;
  void join();
  void terminate();
  // Takes every queued task out and cancels it (shutdown(cancel_futures)).
  void cancel_queued();

  // Null unless PoolOptions::insights.
  [[nodiscard]] const InsightsRecorder* insights() const noexcept { return insights_.get(); }

  // JobHost
  void defer_completion(std::shared_ptr<JobBase> job) override;
  void complete_on_pool_thread(JobBase& job) noexcept override;
  bool wait(JobBase& job, const Deadline& deadline) override;
  // A queued task's worker skips it once its job's gate is closed (see run()).
  bool cancel(JobBase& job) override;
  // cancel(), or for a running task given a std::stop_token, a stop request.
  bool terminate(JobBase& job) override;

 private:
  enum State : std::uint32_t { kRunning, kClosed, kDraining, kTerminated };

  struct Worker {
    TaskQueue queue;
    // The worker's futex word: 1 while it sleeps or is about to. Whoever turns it back to 0
    // (a waker, or the worker itself) takes it off sleepers_.
    alignas(64) std::atomic<std::uint32_t> asleep{0};
    std::thread thread;
  };

  void worker_loop(unsigned index);
  bool find_task(unsigned index, ThreadTask& out);
  void run(ThreadTask& task) noexcept;
  void run_timed(ThreadTask& task) noexcept;  // run(), recording the chunk (insights)
  bool all_empty() const noexcept;
  void sleep(Worker& w);
  // Idle: spins looking for a task if no other worker does; returns whether it found one.
  bool spin(unsigned index, ThreadTask& task);
  bool claim(Worker& w) noexcept;  // wakes w if it sleeps; returns whether it did
  // After a push to target's queue; in_a_row: the pushing thread pushed before without waiting.
  void wake_for_push(unsigned target, bool in_a_row) noexcept;
  void wake_one(unsigned prefer) noexcept;
  void wake_all() noexcept;
  // Closes every queue: after this, no task is added to any.
  void stop_pushes() noexcept;
  // The queue a thread outside the pool pushes to next: round robin, kept per thread so that
  // submitters share no counter.
  unsigned outside_target() const noexcept;
  void join_threads();
  [[noreturn]] void throw_not_running(std::uint32_t state) const;

  PoolOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<InsightsRecorder> insights_;  // PoolOptions::insights

  alignas(64) std::atomic<std::uint32_t> state_{kRunning};
  alignas(64) std::atomic<std::uint32_t> sleepers_{0};
  std::atomic<std::uint32_t> spinning_{0};  // 1 while a worker spins looking for work (at most one)
  // Set once no more pushes can happen: workers exit when idle. The spinning worker reads it at
  // every look, so it starts a line of its own (shared only with callback_mu_): next to
  // spinning_ and sleepers_, which every push reads and every spin writes, it made a round trip
  // (apply_async, then get) 1.5x as long.
  alignas(64) std::atomic<bool> stop_{false};

  std::mutex callback_mu_;  // held while a job's callbacks run: one at a time

  std::mutex start_mu_;
  std::condition_variable started_cv_;
  unsigned started_ = 0;           // workers past their initializer; guarded by start_mu_
  std::exception_ptr init_error_;  // the first initializer failure; guarded by start_mu_

  std::mutex lifecycle_mu_;  // held while the threads are joined
  bool joined_ = false;      // guarded by lifecycle_mu_
};

}  // namespace mproc::detail
